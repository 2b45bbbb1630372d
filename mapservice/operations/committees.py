"""Creating a committee hosted by this deployment, with its district boundary."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.core import geo
from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _
from mapservice.models import Committee
from mapservice.operations.areas import load_areas


def _refuse(field: str, text: str) -> ValidationFailed:
    return ValidationFailed(_("The committee was not created."), {field: text})


def create_committee(
    session: Session,
    *,
    slug: str,
    name: str,
    timezone: str,
    district_file: str | Path,
    district_name: str | None = None,
) -> Committee:
    """A new committee ``slug`` named ``name`` in ``timezone`` whose district is the one
    polygon of ``district_file`` (or its feature ``district_name``); raise ValidationFailed
    naming the field at fault, having added nothing."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _refuse("timezone", _("Unknown time zone '%(tz)s'.", tz=timezone)) from None
    try:
        areas = geo.read_areas(district_file, level="district")
    except (geo.GeoDataError, OSError) as exc:
        raise _refuse("district", str(exc)) from None
    if district_name:
        areas = [a for a in areas if a.name == district_name]
    if len(areas) != 1:
        raise _refuse(
            "district",
            _("Expected one district, found %(n)s: name the one to use.", n=len(areas)),
        )
    if session.scalar(select(Committee.id).where(Committee.slug == slug)) is not None:
        raise _refuse("slug", _("A committee '%(slug)s' exists already.", slug=slug))
    committee = Committee(slug=slug, name=name, timezone=timezone)
    session.add(committee)
    session.flush()
    load_areas(session, None, committee, areas, "district")
    return committee
