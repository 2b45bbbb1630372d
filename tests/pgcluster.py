"""A throw-away PostgreSQL cluster for the test suite.

PostgreSQL refuses to run as root, so when the suite runs as root the cluster is created and
started as the unprivileged ``nobody`` user (via ``runuser``) in a fresh temporary directory.
It listens on 127.0.0.1 on a free port and a socket inside that directory only, trusts local
connections (nothing else can reach it), runs without fsync (it is thrown away;
``durable=True``: with fsync and synchronous commits, as in production), and is stopped and
deleted when the tests end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mapservice.maintenance import find_pg_bin


def find_bin(name: str) -> str:
    return find_pg_bin(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, durable: bool = False) -> None:
        #: durable: fsync and synchronous_commit on, as in production (bench/nginx_bench.py).
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="mapservice-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.user = "nobody" if self.as_root else None

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(
            cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.root
        )

    def start(self) -> str:
        if self.user:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, user=self.user)
        self._run(
            find_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        for attempt in range(3):
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port}"
                f" -c unix_socket_directories={self.root}"
                " -c max_connections=200"
            )
            if not self.durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            try:
                self._run(
                    find_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.root / "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                break
            except subprocess.CalledProcessError:
                # The free port was taken before the server bound it (another suite or server
                # starting at the same moment): try another one.
                log = (self.root / "log").read_text(errors="replace")
                if attempt == 2 or "already in use" not in log:
                    raise
                self.port = free_port()
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(find_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
