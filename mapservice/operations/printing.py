"""The printed one map of a committee: every published venue, numbered, with its legend and
index. The CLI (``mapservice map print``) and the dashboard's print buttons both call
:func:`print_committee_map`, so they print the same title and the same venues."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mapservice.core.i18n import _
from mapservice.models import Committee
from mapservice.stats.frames import load_areas, load_map_venues
from mapservice.stats.printmap import FORMATS, PAPERS, print_map

__all__ = ["FORMATS", "PAPERS", "PrintedMap", "map_title", "print_committee_map"]


@dataclass(frozen=True)
class PrintedMap:
    data: bytes
    mimetype: str
    filename: str
    title: str
    venues: int


def map_title(committee: Committee) -> str:
    """The title printed above the map: the committee's own (its settings), else the
    standard one in the reader's language."""
    if committee.print_title.strip():
        return committee.print_title.strip()
    return _("%(committee)s: map of the shared venues", committee=committee.name)


def print_committee_map(
    session: Session,
    committee: Committee,
    *,
    paper: str = "A3",
    fmt: str = "pdf",
    on: date | None = None,
) -> PrintedMap:
    """The committee's one map as a PDF or PNG on A3 or A4, dated ``on`` (default: today in
    the committee's time zone). Raises ValueError for an unknown paper or format and
    :class:`mapservice.stats.fonts.FontMissing` when the server has no Chinese font."""
    venues = load_map_venues(session, committee.id)
    district, streets = load_areas(session, committee.id)
    title = map_title(committee)
    data = print_map(
        venues,
        district,
        streets,
        title=title,
        paper=paper,
        fmt=fmt,
        on=on or datetime.now(ZoneInfo(committee.timezone)).date(),
    )
    return PrintedMap(
        data=data,
        mimetype="application/pdf" if fmt == "pdf" else "image/png",
        filename=f"{committee.slug}-one-map-{paper}.{fmt}",
        title=title,
        venues=len(venues),
    )
