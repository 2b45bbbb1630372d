"""The pure rules of activities and their sign-ups: what a valid activity is, where a sign-up
goes (confirmed or waitlisted), who a withdrawal promotes, and the status shown.

The waitlist is strict first-come-first-served: a sign-up is confirmed only if nobody is
waiting and its headcount fits; when room frees up, waiting sign-ups are promoted in arrival
order while the first of them fits — one that does not fit stops the promotion (nobody
overtakes it), so the waitlist's order is always the arrival order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shapely.geometry import Polygon, shape

from mapservice.core.i18n import _
from mapservice.core.vocab import ActivityKind, ActivityStatus, SignUpState

MAX_CAPACITY = 10_000
MAX_TITLE = 120
MAX_NOTE = 200
MAX_DESCRIPTION = 4000
#: Statuses a sign-up or a withdrawal may happen in (``full`` joins the waitlist).
SIGNUP_OPEN = (ActivityStatus.OPEN.value, ActivityStatus.FULL.value)


def effective_status(status: str, deadline: datetime, end: datetime, now: datetime) -> str:
    """The status as shown and obeyed: an open or full activity whose deadline has passed is
    closed; a held (not draft, not cancelled) one that has ended is done."""
    if status in (ActivityStatus.DRAFT.value, ActivityStatus.CANCELLED.value):
        return status
    if now >= end:
        return ActivityStatus.DONE.value
    if status in SIGNUP_OPEN and now >= deadline:
        return ActivityStatus.CLOSED.value
    return status


def fill_status(status: str, capacity: int, confirmed: int, waiting: int) -> str:
    """``open`` ↔ ``full`` following the sign-ups (other statuses stay)."""
    if status not in SIGNUP_OPEN:
        return status
    full = confirmed >= capacity or waiting > 0
    return ActivityStatus.FULL.value if full else ActivityStatus.OPEN.value


def place(capacity: int, confirmed: int, waiting: int, headcount: int) -> str:
    """Where a new sign-up goes: confirmed when nobody waits and it fits, else waitlisted."""
    if waiting == 0 and confirmed + headcount <= capacity:
        return SignUpState.CONFIRMED.value
    return SignUpState.WAITLISTED.value


def promotions(capacity: int, confirmed: int, waitlist: Sequence[tuple[int, int]]) -> list[int]:
    """The ids of the waitlisted sign-ups (``(id, headcount)`` in arrival order) to confirm
    now: the longest head of the list that fits."""
    out = []
    for signup_id, headcount in waitlist:
        if confirmed + headcount > capacity:
            break
        confirmed += headcount
        out.append(signup_id)
    return out


def headcount_problem(headcount: int, capacity: int) -> str | None:
    if headcount < 1:
        return _("Sign up at least one person.")
    if headcount > capacity:
        return _("At most %(n)s people: the activity's capacity.", n=capacity)
    return None


@dataclass(frozen=True)
class Site:
    """A place without booking: a point, or an area (its representative point kept too)."""

    lon: float
    lat: float
    area: str | None  # GeoJSON polygon, compact


def parse_site(lon: float | None, lat: float | None, area: Any) -> tuple[Site | None, str | None]:
    """The site from a point or a drawn area (GeoJSON text or object), or a problem."""
    if area not in (None, ""):
        try:
            geom = shape(json.loads(area) if isinstance(area, str) else area)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None, _("The drawn area is not a GeoJSON polygon.")
        if not isinstance(geom, Polygon) or geom.is_empty:
            return None, _("The drawn area is not a GeoJSON polygon.")
        if not geom.is_valid:
            return None, _("The drawn area crosses itself; draw it again.")
        if not _in_range(*geom.bounds[:2]) or not _in_range(*geom.bounds[2:]):
            return None, _("The place is outside the map.")
        point = geom.representative_point()
        compact = json.dumps(geom.__geo_interface__, separators=(",", ":"))
        return Site(round(point.x, 6), round(point.y, 6), compact), None
    if lon is None or lat is None:
        return None, _("Choose a venue, or mark the site on the map.")
    if not _in_range(lon, lat):
        return None, _("The place is outside the map.")
    return Site(lon, lat, None), None


def _in_range(lon: float, lat: float) -> bool:
    return -180 <= lon <= 180 and -90 <= lat <= 90


def activity_problems(
    *,
    title: str,
    kind: str,
    start: datetime,
    end: datetime,
    capacity: int,
    deadline: datetime | None,
    description: str = "",
) -> dict[str, str]:
    """Field → message for everything wrong with an activity's own values."""
    errors: dict[str, str] = {}
    if not title.strip() or len(title.strip()) > MAX_TITLE:
        errors["title"] = _("A title of 1 to %(n)s characters is required.", n=MAX_TITLE)
    if kind not in {k.value for k in ActivityKind}:
        errors["kind"] = _("Choose a kind of activity.")
    if start.tzinfo is None or end.tzinfo is None:
        errors["start"] = _("Give the time with its time zone.")
    elif end <= start:
        errors["end"] = _("The end must be after the start.")
    if not 1 <= capacity <= MAX_CAPACITY:
        errors["capacity"] = _("The capacity must be 1 to %(n)s people.", n=MAX_CAPACITY)
    if deadline is not None and start.tzinfo is not None and deadline > start:
        errors["signup_deadline"] = _("The sign-up deadline must not be after the start.")
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = _("At most %(n)s characters.", n=MAX_DESCRIPTION)
    return errors
