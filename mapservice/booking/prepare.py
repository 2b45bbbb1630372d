"""The unlocked half of a booking (new or moved): check the request against every rule that
does not depend on the venue's bookings, reading only, and keep the plain values the locked
step (:mod:`mapservice.booking.write`) needs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from mapservice.booking.loading import quota_minutes
from mapservice.booking.locking import require_writer, tell_lock_wait
from mapservice.booking.request import BookingRequest
from mapservice.booking.rows import BookingGroup, aware, group_may_book_row, venue_and_group
from mapservice.booking.rules import Request, VenueRules, check
from mapservice.core.errors import NotAllowed, NotFound, RuleViolation, Violation
from mapservice.core.i18n import _
from mapservice.models import User
from mapservice.policy import active_with_unit, can_act_for_group, can_run_venue


class Runner(NamedTuple):
    """What :func:`mapservice.policy.can_run_venue` reads of who makes a request, kept so
    that the alternatives (at other venues, after the lock) need not load the user again."""

    active: bool
    is_admin: bool
    is_secretary: bool
    committee_id: int
    unit_id: int | None


@dataclass(frozen=True)
class Prepared:
    """A booking request checked against everything that does not depend on the venue's
    bookings (who asks, for which group, the venue's rules, hours, closures, notice, length…),
    with the plain values the locked step needs. ``stamp`` is what those checks relied on
    (the venue's ``rules_version``, its committee's time zone, the group's state); under the
    lock it is read again in the same statement that takes the lock, and any difference sends
    the request through the checks again. ``moving``: the booking this request moves
    (:func:`mapservice.booking.write.reschedule`): its own units and quota do not count
    against it."""

    venue_id: int
    group_id: int
    start: datetime
    end: datetime
    units: int
    headcount: int | None
    purpose: str
    series_id: str | None
    now: datetime
    actor_id: int
    actor_name: str
    actor_group_ids: frozenset[int]
    actor_is_booker: bool
    owner: bool
    pending: bool
    hold_hours: int
    committee_id: int
    venue_unit_id: int
    venue_name: str
    group_name: str
    rules: VenueRules
    may_book: bool
    group_active: bool
    locked: bool
    has_expired: bool
    stamp: tuple[Any, ...]
    #: Who asks and the group as read with the request: what the rules at another venue
    #: read of them (the alternatives).
    runner: Runner
    group_row: BookingGroup
    moving: int | None = None
    caller_name: str | None = None
    caller_phone: str | None = None

    @property
    def quota_applies(self) -> bool:
        return not self.owner and self.rules.weekly_quota_hours is not None

    def violations(self, quota_used_minutes: float = 0.0) -> list[Violation]:
        """Every rule the request breaks, the group having used ``quota_used_minutes`` of
        the venue's weekly quota."""
        return check(
            Request(self.start, self.end, self.units, self.headcount),
            self.rules,
            self.now,
            may_book=self.may_book,
            group_active=self.group_active,
            quota_used_minutes=quota_used_minutes,
            exempt=self.owner,
            group_name=self.group_name,
        )

    def sees_details(self, group_id: int) -> bool:
        """:func:`can_see_booking_group` for this actor at this venue."""
        return self.owner or group_id in self.actor_group_ids

    @property
    def request(self) -> BookingRequest:
        """The request this was prepared from (to check it again)."""
        return BookingRequest(
            self.venue_id,
            self.group_id,
            self.start,
            self.end,
            self.units,
            self.purpose,
            self.headcount,
            self.series_id,
            self.caller_name,
            self.caller_phone,
        )


def prepare(
    session: Session,
    actor: User | None,
    request: BookingRequest,
    *,
    now: datetime | None = None,
    lock: bool = False,
    moving: int | None = None,
) -> Prepared:
    """Check ``request`` against every rule that does not depend on the venue's
    bookings, reading only (no lock needed). Raises NotAllowed / NotFound / RuleViolation
    (with the quota counted too, so the list is the one :func:`~mapservice.booking.write.book`
    would give).

    ``lock`` (PostgreSQL, in the transaction that then books): the venue's row is locked by
    the query that reads it, so nothing checked here can change before the booking is written
    and :func:`~mapservice.booking.write.book_prepared` need not lock and re-read (one
    statement less). On SQLite the whole database would be locked meanwhile: there the checks
    run outside the write lock."""
    now = aware(now)
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    if lock:
        require_writer(session)
    start, end = request.start, request.end
    started = time.perf_counter()
    found = venue_and_group(
        session, actor, request.venue_id, request.group_id, start, end, now, lock
    )
    if lock:
        tell_lock_wait(time.perf_counter() - started)
    if found is None:
        raise NotFound("venue_not_found", _("No such venue."))
    venue, rules, group, has_expired = found
    version = venue.rules_version  # read with (or before) everything checked below
    if group is None:
        raise NotFound("group_not_found", _("No such group."))
    if not can_act_for_group(actor, group, venue):
        raise NotAllowed("not_your_group", _("You may only book for your own group."))
    owner = can_run_venue(actor, venue)
    may_book = group_may_book_row(session, group, venue, start.astimezone(rules.tz).date())
    active = active_with_unit(group.active, group.unit_status)
    p = Prepared(
        venue_id=venue.id,
        group_id=group.id,
        start=start,
        end=end,
        units=request.units,
        headcount=request.headcount,
        purpose=request.purpose.strip()[:2000],
        series_id=request.series_id,
        now=now,
        actor_id=actor.id,
        actor_name=actor.username,
        actor_group_ids=actor.group_ids,
        actor_is_booker=actor.is_booker,
        owner=owner,
        pending=venue.requires_approval and not owner,
        hold_hours=venue.hold_hours,
        committee_id=venue.committee_id,
        venue_unit_id=venue.unit_id,
        venue_name=venue.name,
        group_name=group.name,
        rules=rules,
        may_book=may_book,
        group_active=active,
        locked=lock,
        has_expired=has_expired,
        stamp=(
            version,
            rules.tz.key,
            group.active,
            group.unit_id,
            group.unit_status,
            group.unit_committee_id,
            venue.unit_status,
        ),
        runner=Runner(
            actor.active, actor.is_admin, actor.is_secretary, actor.committee_id, actor.unit_id
        ),
        group_row=group,
        moving=moving,
        caller_name=request.caller_name,
        caller_phone=request.caller_phone,
    )
    violations = p.violations()
    if violations and p.quota_applies:  # the full list, as book() would give it: with the quota
        violations = p.violations(
            quota_minutes(session, venue.id, rules.tz, group.id, start, now, moving)
        )
    if violations:
        raise RuleViolation(violations)
    return p
