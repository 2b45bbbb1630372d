"""Importing a venue file (CSV, XLSX or GeoJSON): the one rule set of the import page and
``mapservice import venues``.

All or nothing. The file's unreadable rows and the rows the database would refuse are
reported together, row-numbered, in the reader's language; when the file has unreadable rows
its good rows are only checked, never written. At most ``max_rows`` venues per file (the
deployment's ``IMPORT_MAX_ROWS``, for the page and the command alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from mapservice.core.errors import ImportRejected, NotAllowed
from mapservice.core.i18n import _, lang
from mapservice.core.venue_io import MAX_ROWS, message, read_venues
from mapservice.models import Committee, User
from mapservice.operations.venues import ImportReport, Region, check_import, import_venues

__all__ = ["ImportReport", "import_venue_file", "max_rows_of", "require_importer"]


def max_rows_of(config: Mapping[str, Any]) -> int:
    """The most venues one file may hold: the deployment's ``IMPORT_MAX_ROWS``, else 5000."""
    return int(config.get("IMPORT_MAX_ROWS") or MAX_ROWS)


def require_importer(actor: User) -> None:
    """Committee admins and unit secretaries import (a secretary only its unit's venues)."""
    if not (actor.is_admin or actor.is_secretary):
        raise NotAllowed(
            "not_allowed", _("Only committee admins and unit secretaries may import venues.")
        )


def import_venue_file(
    session: Session,
    actor: User,
    committee: Committee,
    data: bytes,
    filename: str,
    *,
    max_rows: int = MAX_ROWS,
    checker: Session | None = None,
) -> ImportReport:
    """Import the venues of the file ``filename`` holding ``data`` into ``committee``; raise
    ImportRejected listing every problem, having written nothing (the caller rolls back all
    the same), or NotAllowed for a booker.

    ``checker``: a read-only session to read and validate the file in first (the page's), so
    that a file refused — the costly case, thousands of rows checked — never holds the
    database's writer: ``session`` is used only once the file is known good, to re-check it
    against the database as it is then and write it (the checks must hold at the write)."""
    require_importer(actor)
    rows, errors = read_venues(data, filename, max_rows=max_rows)
    reader = checker or session
    if errors or checker is not None:
        problems = [message(e, lang()) for e in errors]
        problems += check_import(reader, actor, committee, rows, Region.of(reader, committee))[1]
        if problems:
            raise ImportRejected(problems)
    return import_venues(session, actor, committee, rows)
