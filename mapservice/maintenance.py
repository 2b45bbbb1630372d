"""Backups: ``mapservice backup --output FILE`` and ``mapservice restore FILE``.

SQLite uses its online backup API (consistent while the service runs); PostgreSQL uses
``pg_dump -Fc`` / ``pg_restore --clean``. A restore replaces the configured database's
contents: stop the service first."""

from __future__ import annotations

import glob
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


def find_pg_bin(name: str) -> str:
    """A PostgreSQL client/server program: the newest under /usr/lib/postgresql, else PATH."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} not found: install the PostgreSQL client programs")


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("cannot back up an in-memory database")
    return Path(database)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def backup(url: str, output: Path) -> None:
    """Write a consistent copy of the database at ``url`` to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        src = sqlite3.connect(_sqlite_path(url))
        dst = sqlite3.connect(output)
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
            src.close()
        return
    subprocess.run(
        [find_pg_bin("pg_dump"), "--format=custom", "--no-owner", f"--file={output}", _libpq(url)],
        check=True,
        capture_output=True,
    )


def restore(url: str, source: Path) -> None:
    """Replace the contents of the database at ``url`` with the backup in ``source``."""
    if not source.is_file():
        raise FileNotFoundError(f"no such backup: {source}")
    if url.startswith("sqlite"):
        src = sqlite3.connect(source)
        dst = sqlite3.connect(_sqlite_path(url))
        try:
            if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise ValueError(f"{source} is not a sound SQLite database")
            with dst:
                src.backup(dst)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{source} is not an SQLite backup: {exc}") from exc
        finally:
            dst.close()
            src.close()
        return
    result = subprocess.run(
        [
            find_pg_bin("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            f"--dbname={_libpq(url)}",
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise ValueError(f"pg_restore failed: {lines[-1] if lines else result.returncode}")
