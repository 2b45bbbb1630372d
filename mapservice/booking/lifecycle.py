"""A booking's life after it is written: the owner confirms or declines a pending request,
a hold runs out, the booker or the owner cancels (one, the following, the whole series), the
owner checks the group in or marks a no-show. Each decision locks the venue and judges the
booking as it is once the lock is held."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.booking import capacity
from mapservice.booking.locking import lock_venue
from mapservice.booking.rows import aware
from mapservice.core.errors import NotAllowed, NotFound, RuleViolation, Violation
from mapservice.core.i18n import _
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, Group, Notification, User, Venue
from mapservice.models.audit import record
from mapservice.policy import bookings_managed_by, can_run_venue, is_own_group_booking

ACTIVE = (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)


def ensure_movable(
    status: str, start_at: datetime, hold_expires_at: datetime | None, now: datetime
) -> None:
    """Only a future booking still holding its slot (confirmed, or pending within its hold)
    can be moved."""
    if (
        status not in ACTIVE
        or start_at <= now
        or (hold_expires_at is not None and hold_expires_at <= now)
    ):
        raise RuleViolation(
            [
                Violation(
                    "not_active",
                    "status",
                    _("Only future pending or confirmed bookings can be moved."),
                )
            ]
        )


def notify(session: Session, booking: Booking, kind: str, **params: Any) -> None:
    """An in-app message for the group (and e-mail, when the edge configures SMTP)."""
    session.add(
        Notification(
            group_id=booking.group_id,
            booking_id=booking.id,
            kind=kind,
            params=json.dumps(
                {"venue": booking.venue.name, "start": booking.start_at.isoformat(), **params},
                ensure_ascii=False,
                default=str,
            ),
        )
    )


def notify_new_request(
    session: Session,
    unit_id: int,
    booking_id: int,
    venue: str,
    start: datetime,
    group: str,
    caller_name: str | None = None,
    caller_phone: str | None = None,
    count: int = 1,
) -> None:
    """An in-app message for the secretaries of the venue's unit: a new request waits for
    them (e-mailed too when the edge configures SMTP). A series' request is one message."""
    params: dict[str, Any] = {"venue": venue, "start": start.isoformat(), "group": group}
    if caller_name or caller_phone:
        params.update(caller=caller_name or "", phone=caller_phone or "")
    if count > 1:
        params["count"] = count
    session.add(
        Notification(
            unit_id=unit_id,
            booking_id=booking_id,
            kind="new_request",
            params=json.dumps(params, ensure_ascii=False, default=str),
        )
    )


def managed_booking(session: Session, actor: User | None, booking_id: int) -> Booking:
    """A booking the actor may manage (:func:`bookings_managed_by`), loaded through that one
    scoped query. Others: 404."""
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    booking = session.scalars(
        select(Booking)
        .join(Venue, Venue.id == Booking.venue_id)
        .join(Group, Group.id == Booking.group_id)
        .where(Booking.id == booking_id, bookings_managed_by(actor))
    ).one_or_none()
    if booking is None:
        raise NotFound("booking_not_found", _("No such booking."))
    return booking


def _owned_booking(session: Session, actor: User | None, booking_id: int) -> Booking:
    booking = managed_booking(session, actor, booking_id)
    if not can_run_venue(actor, booking.venue):
        raise NotAllowed("owner_only", _("Only the venue's unit may do this."))
    return booking


def _audit_status(
    session: Session, actor: User | None, action: str, booking: Booking, before: str, **details: Any
) -> None:
    """The audit entry of a status change: ``before`` → the booking's status now."""
    record(
        session,
        actor,
        action,
        booking,
        committee_id=booking.venue.committee_id,
        changes={"status": [before, booking.status]},
        **details,
    )


def expire_holds(session: Session, now: datetime | None = None, venue_id: int | None = None) -> int:
    """Expire pending requests whose hold ran out (run on access, or `mapservice bookings
    expire`). Returns how many expired."""
    now = aware(now)
    stmt = select(Booking).where(
        Booking.status == BookingStatus.PENDING.value,
        Booking.hold_expires_at.is_not(None),
        Booking.hold_expires_at <= now,
    )
    if venue_id is not None:
        stmt = stmt.where(Booking.venue_id == venue_id)
    expired = list(session.scalars(stmt))
    for booking in expired:
        capacity.release(session, booking)
        before, booking.status = booking.status, BookingStatus.DECLINED.value
        booking.status_reason = "expired"
        booking.decided_at = now
        notify(session, booking, "expired")
        _audit_status(session, None, "booking.expire", booking, before)
    session.flush()
    return len(expired)


def _cancel_one(
    session: Session, actor: User, booking: Booking, reason: str, now: datetime
) -> None:
    capacity.release(session, booking)
    before, booking.status = booking.status, BookingStatus.CANCELLED.value
    booking.status_reason = reason.strip()[:200]
    booking.decided_by_id = actor.id
    booking.decided_at = now
    if can_run_venue(actor, booking.venue) and not is_own_group_booking(actor, booking):
        notify(session, booking, "cancelled_by_owner", reason=booking.status_reason)
    _audit_status(session, actor, "booking.cancel", booking, before, reason=reason)


def cancel(
    session: Session,
    actor: User | None,
    booking_id: int,
    *,
    scope: str = "one",
    reason: str = "",
    now: datetime | None = None,
) -> list[Booking]:
    """Cancel one booking, this and the following ones of its series, or the whole series
    (future, active occurrences). Bookers must cancel before the venue's cut-off; the owner
    may cancel any time (the group is notified). Returns what was cancelled."""
    now = aware(now)
    booking = managed_booking(session, actor, booking_id)
    assert actor is not None
    if scope not in ("one", "following", "series"):
        raise ValueError(f"unknown scope {scope!r}")
    lock_venue(session, booking.venue_id)
    session.refresh(booking)  # as it is now: another writer may have changed it meanwhile
    targets = _cancel_targets(session, actor, booking, scope, now)
    for target in targets:
        _cancel_one(session, actor, target, reason, now)
    session.flush()
    return targets


def cancel_preview(
    session: Session,
    actor: User | None,
    booking_id: int,
    *,
    scope: str = "one",
    now: datetime | None = None,
) -> list[Booking]:
    """What :func:`cancel` with ``scope`` would cancel now, checked the same way (the same
    NotFound / RuleViolation), changing nothing: what a person confirms before cancelling."""
    now = aware(now)
    booking = managed_booking(session, actor, booking_id)
    assert actor is not None
    if scope not in ("one", "following", "series"):
        raise ValueError(f"unknown scope {scope!r}")
    return _cancel_targets(session, actor, booking, scope, now)


def _cancel_targets(
    session: Session, actor: User, booking: Booking, scope: str, now: datetime
) -> list[Booking]:
    if scope == "one" or booking.series_id is None:
        targets = [booking]
    else:
        stmt = select(Booking).where(
            Booking.series_id == booking.series_id,
            Booking.status.in_(ACTIVE),
            Booking.start_at > now,
        )
        if scope == "following":
            stmt = stmt.where(Booking.start_at >= booking.start_at)
        targets = list(session.scalars(stmt.order_by(Booking.start_at)))
    owner = can_run_venue(actor, booking.venue)
    for target in targets:
        if target.status not in ACTIVE:
            raise RuleViolation(
                [
                    Violation(
                        "not_active",
                        "status",
                        _("Only pending or confirmed bookings can be cancelled."),
                    )
                ]
            )
        if target.start_at <= now:
            raise RuleViolation(
                [Violation("started", "start", _("This booking has already started."))]
            )
        cutoff = timedelta(minutes=target.venue.cancel_cutoff_minutes)
        if not owner and target.start_at - now < cutoff:
            raise RuleViolation(
                [
                    Violation(
                        "cancel_cutoff",
                        "start",
                        _(
                            "Cancel at least %(min)s minutes before the start;"
                            " please call the venue.",
                            min=target.venue.cancel_cutoff_minutes,
                        ),
                    )
                ]
            )
    return targets


def _not_pending(message: str) -> RuleViolation:
    """The refusal of a decision on a booking that is no longer pending."""
    return RuleViolation([Violation("not_pending", "status", message)])


def confirm(
    session: Session, actor: User | None, booking_id: int, *, now: datetime | None = None
) -> Booking:
    """The owning unit accepts a pending request."""
    now = aware(now)
    booking = _owned_booking(session, actor, booking_id)
    lock_venue(session, booking.venue_id)
    session.refresh(booking)  # as it is now: another writer may have changed it meanwhile
    expire_holds(session, now, booking.venue_id)
    if booking.status != BookingStatus.PENDING.value:
        raise _not_pending(
            _(
                "Only pending requests can be confirmed (this one is %(status)s).",
                status=BookingStatus(booking.status).label(),
            )
        )
    before, booking.status = booking.status, BookingStatus.CONFIRMED.value
    booking.hold_expires_at = None
    booking.decided_by_id = actor.id if actor else None
    booking.decided_at = now
    notify(session, booking, "confirmed")
    _audit_status(session, actor, "booking.confirm", booking, before)
    return booking


def decline(
    session: Session,
    actor: User | None,
    booking_id: int,
    reason: str,
    *,
    now: datetime | None = None,
) -> Booking:
    """The owning unit refuses a pending request, saying why; the slot is freed."""
    now = aware(now)
    booking = _owned_booking(session, actor, booking_id)
    if not reason.strip():
        raise RuleViolation(
            [Violation("reason_required", "reason", _("Please give a reason for declining."))]
        )
    lock_venue(session, booking.venue_id)
    session.refresh(booking)  # as it is now: another writer may have changed it meanwhile
    if booking.status != BookingStatus.PENDING.value:
        raise _not_pending(
            _(
                "Only pending requests can be declined (this one is %(status)s).",
                status=BookingStatus(booking.status).label(),
            )
        )
    capacity.release(session, booking)
    before, booking.status = booking.status, BookingStatus.DECLINED.value
    booking.status_reason = reason.strip()[:200]
    booking.decided_by_id = actor.id if actor else None
    booking.decided_at = now
    notify(session, booking, "declined", reason=booking.status_reason)
    _audit_status(session, actor, "booking.decline", booking, before, reason=reason)
    return booking


def check_in(
    session: Session,
    actor: User | None,
    booking_id: int,
    *,
    no_show: bool = False,
    now: datetime | None = None,
) -> Booking:
    """The owner records that the group came (``completed``) or did not (``no_show``)."""
    now = aware(now)
    booking = _owned_booking(session, actor, booking_id)
    lock_venue(session, booking.venue_id)
    session.refresh(booking)  # another decision may have committed while we waited
    if booking.status != BookingStatus.CONFIRMED.value:
        raise RuleViolation(
            [
                Violation(
                    "not_confirmed",
                    "status",
                    _("Only confirmed bookings can be checked in or marked no-show."),
                )
            ]
        )
    earliest = booking.start_at - timedelta(minutes=30) if not no_show else booking.start_at
    if now < earliest:
        raise RuleViolation(
            [
                Violation(
                    "too_early",
                    "start",
                    _("Too early: check-in opens 30 minutes before the start; no-show after it."),
                )
            ]
        )
    _attended(session, actor, booking, no_show, now)
    return booking


def _attended(
    session: Session, actor: User | None, booking: Booking, no_show: bool, now: datetime
) -> None:
    before = booking.status
    booking.status = BookingStatus.NO_SHOW.value if no_show else BookingStatus.COMPLETED.value
    booking.decided_by_id = actor.id if actor else None
    booking.decided_at = now
    _audit_status(
        session, actor, "booking.no_show" if no_show else "booking.check_in", booking, before
    )


def venues_checking_in(session: Session) -> list[int]:
    """The venues whose unit checks groups in (``Venue.checks_in``, the venue form's box)."""
    return list(session.scalars(select(Venue.id).where(Venue.checks_in.is_(True))))


def mark_no_shows(
    session: Session, venue_id: int, grace: timedelta, now: datetime | None = None
) -> int:
    """At one venue, mark as no-show every confirmed booking that started at least ``grace``
    ago (within the last two days) and was not checked in; under the venue's lock, as
    :func:`check_in` does (audited without an actor). Returns how many were marked."""
    now = aware(now)
    lock_venue(session, venue_id)
    late = session.scalars(
        select(Booking).where(
            Booking.venue_id == venue_id,
            Booking.status == BookingStatus.CONFIRMED.value,
            Booking.start_at <= now - grace,
            Booking.start_at > now - grace - timedelta(days=2),
        )
    ).all()
    for booking in late:
        _attended(session, None, booking, True, now)
    session.flush()
    return len(late)
