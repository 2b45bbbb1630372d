"""The hourly digest of new requests for the secretaries of a venue's unit (issue 21 item 3).

Once an hour within working hours (the unit's local time, ``DIGEST_HOURS``, default 8–20:
from 08:00 to 19:59), each unit with pending requests to its venues that no earlier digest
listed gets one notice of kind ``request_digest`` (in-app, and e-mailed to its secretaries
when SMTP is configured, as every notice is). The notice's params record the ids it lists —
the record of what was sent: a request is never listed twice. Each unit's digest is made
under a lock of its own (PostgreSQL: an advisory transaction lock; SQLite: the write lock its
writer session takes when it begins) so two workers, or a worker and ``mapservice jobs run``,
cannot both send it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from mapservice.core.vocab import BookingStatus
from mapservice.db import is_immediate
from mapservice.models import Booking, Committee, Group, Notification, Venue

KIND = "request_digest"
#: Where the approval queue is, under ``PUBLIC_URL``.
QUEUE_PATH = "/bookings/requests"
#: At most this many lines in one digest (the rest are counted, and all recorded as sent).
MAX_LINES = 30
#: The advisory locks' first key (the second is the unit's id).
_LOCK_CLASS = 21_003

_HOURS = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")


@dataclass(frozen=True)
class Hours:
    """Local hours ``start <= hour < end`` in which digests are sent."""

    start: int
    end: int

    def __contains__(self, local: datetime) -> bool:
        return self.start <= local.hour < self.end


def working_hours(raw: object) -> Hours | None:
    """``"8-20"`` → 08:00–19:59; ``"off"`` (or empty) → no digests. Else a clear error."""
    value = str(raw if raw is not None else "").strip().lower()
    if value in ("", "off", "no", "0"):
        return None
    m = _HOURS.match(value)
    if m is None or not (0 <= int(m[1]) < int(m[2]) <= 24):
        raise ValueError(
            "MAPSERVICE_DIGEST_HOURS must be local hours START-END with 0 <= START < END <= 24"
            f" (e.g. 8-20), or off; not {raw!r}"
        )
    return Hours(int(m[1]), int(m[2]))


def queue_url(public_url: object) -> str:
    base = str(public_url or "").strip().rstrip("/")
    return base + QUEUE_PATH if base else ""


def _pending(now: datetime) -> tuple[Any, ...]:
    return (
        Booking.status == BookingStatus.PENDING.value,
        or_(Booking.hold_expires_at.is_(None), Booking.hold_expires_at > now),
    )


def _lock_unit(session: Session, unit_id: int) -> None:
    if not is_immediate(session):
        raise RuntimeError("the digest needs a writer session (mapservice.db.writer)")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _LOCK_CLASS, "b": unit_id}
        )


def _listed(session: Session, unit_id: int, since: datetime) -> set[int]:
    """The requests the unit's digests made since ``since`` listed."""
    ids: set[int] = set()
    for raw in session.scalars(
        select(Notification.params).where(
            Notification.unit_id == unit_id,
            Notification.kind == KIND,
            Notification.created_at >= since,
        )
    ):
        try:
            ids.update(int(i) for i in json.loads(raw or "{}").get("ids", []))
        except (ValueError, TypeError, AttributeError):
            continue
    return ids


def _items(rows: list[tuple[Booking, str, str]]) -> list[dict[str, Any]]:
    """One line per request: a series' dates waiting together are one line with a count."""
    lines: dict[str, dict[str, Any]] = {}
    for booking, venue, group in rows:
        key = f"s:{booking.series_id}" if booking.series_id else f"b:{booking.id}"
        line = lines.get(key)
        if line is None:
            lines[key] = {
                "venue": venue,
                "start": booking.start_at.isoformat(),
                "group": group,
                "count": 1,
            }
        else:
            line["count"] += 1
    return list(lines.values())


def digest_unit(session: Session, unit_id: int, tz: ZoneInfo, now: datetime, url: str) -> int:
    """Under the unit's lock: its digest, unless one was made this local hour or nothing new
    waits. Returns how many requests it lists (0: none made). The caller commits."""
    _lock_unit(session, unit_id)
    local = now.astimezone(tz)
    hour_start = local.replace(minute=0, second=0, microsecond=0)
    made_this_hour = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.unit_id == unit_id,
            Notification.kind == KIND,
            Notification.created_at >= hour_start,
        )
    )
    if made_this_hour:
        return 0
    rows = [
        (b, venue, group)
        for b, venue, group in session.execute(
            select(Booking, Venue.name, Group.name)
            .join(Venue, Venue.id == Booking.venue_id)
            .join(Group, Group.id == Booking.group_id)
            .where(Venue.unit_id == unit_id, *_pending(now))
            .order_by(Booking.start_at, Booking.id)
        )
    ]
    if not rows:
        return 0
    # A request can only be in a digest made after it was: look no further back than that
    # (a day's slack for clocks).
    oldest = min(b.created_at for b, _v, _g in rows)
    listed = _listed(session, unit_id, oldest - timedelta(days=1))
    new = [(b, v, g) for b, v, g in rows if b.id not in listed]
    if not new:
        return 0
    items = _items(new)
    params = {
        "ids": [b.id for b, _v, _g in new],
        "count": len(items),
        "items": items[:MAX_LINES],
        "url": url,
        "tz": tz.key,
    }
    session.add(
        Notification(
            unit_id=unit_id,
            kind=KIND,
            params=json.dumps(params, ensure_ascii=False),
            created_at=now,
        )
    )
    return len(new)


def send_digests(
    sessions: Callable[[], Session], now: datetime, hours_setting: object, public_url: object
) -> dict[str, int]:
    """Each unit in its working hours with new pending requests: one digest (its own
    transaction). Counts: digests made and requests listed."""
    hours = working_hours(hours_setting)
    if hours is None:
        return {"digests": 0, "requests": 0}
    url = queue_url(public_url)
    with sessions() as session:
        units = session.execute(
            select(Venue.unit_id, Committee.timezone)
            .join(Booking, Booking.venue_id == Venue.id)
            .join(Committee, Committee.id == Venue.committee_id)
            .where(Venue.unit_id.is_not(None), *_pending(now))
            .distinct()
        ).all()
    digests = listed = 0
    for unit_id, tz_name in sorted(units):
        tz = ZoneInfo(tz_name)
        if now.astimezone(tz) not in hours:
            continue
        with sessions() as session:
            n = digest_unit(session, unit_id, tz, now, url)
            session.commit()
        digests += n > 0
        listed += n
    return {"digests": digests, "requests": listed}
