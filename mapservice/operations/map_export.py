"""The one map as a file (the offline 一卷地图 people send in a chat): the committee's published
venues under a filter, drawn by :func:`mapservice.maps.one_map` with every venue, its popup
text, the boundaries and the legend inside one HTML file that opens from disk with no server and
no network (:func:`mapservice.maps.export.standalone_html`).

Used by ``mapservice map export`` and the "Offline map" link on ``/map``.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mapservice.core import mapdata
from mapservice.core.i18n import _, lang
from mapservice.core.mapfilter import MapFilter
from mapservice.maps import map_labels, one_map
from mapservice.maps.columns import columns_with_details
from mapservice.maps.export import standalone_html
from mapservice.maps.loading import public_venues
from mapservice.models import Committee

__all__ = ["ExportedMap", "export_html", "write_file"]


class ExportedMap:
    """The file's text and how many venues it shows."""

    def __init__(self, html: str, venues: int) -> None:
        self.html = html
        self.venues = venues


def export_html(
    session: Session, committee: Committee, flt: MapFilter, *, now: datetime | None = None
) -> ExportedMap:
    """The committee's **public** venues (published, not retired, unit admitted: what a
    visitor's map shows) matching ``flt``, as one self-contained HTML document in the current
    language. Popups show today's opening hours (``now``'s day in the committee's zone)."""
    tz = ZoneInfo(committee.timezone)
    now = now or datetime.now(tz)
    found = public_venues(session, committee, flt, now)
    m = one_map(
        areas=found.areas,
        tiles=mapdata.tile_layers("none", lang=lang()),
        lang=lang(),
        labels=map_labels(),
        columns=columns_with_details(found.matches, found.weekday),
    )
    title = f"{committee.name} · {_('The one map')} · {now.astimezone(tz):%Y-%m-%d}"
    return ExportedMap(standalone_html(m, title), len(found.matches))


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a temporary file beside it, renamed over
    it once complete. Raises ``OSError`` (the directory missing or not writable, …)."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        # mkstemp makes the file private; a map to send around is as readable as any file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
