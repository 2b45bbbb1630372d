"""iCalendar feeds of a venue's or a group's bookings, behind secret revocable tokens.

A token is shown once when created; only its SHA-256 is stored, so a leaked database does not
leak working feed links. Venue feeds show group names, so only those who run the venue (its
unit's secretary, the committee admin: :func:`policy.can_run_venue`) may create them; a group
feed is for the people who act for the group (:func:`policy.groups_acted_for_by`). A feed keeps
showing its bookings when the venue stops being public (unpublished, retired, its unit
suspended): the group holding a booking there still has it in its calendar.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from mapservice import policy
from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.core.vocab import BookingStatus
from mapservice.models import Activity, Booking, FeedToken, Group, SignUp, User, Venue
from mapservice.models.audit import record

PAST_DAYS = 60
FUTURE_DAYS = 400
SHOWN = (
    BookingStatus.PENDING.value,
    BookingStatus.CONFIRMED.value,
    BookingStatus.COMPLETED.value,
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def revocable_feeds(actor: User) -> ColumnElement[bool]:
    """Feeds ``actor`` may stop: those it made, and any of its committee's (admin)."""
    mine = FeedToken.created_by_id == actor.id
    if not actor.is_admin:
        return mine
    return or_(
        mine,
        FeedToken.venue_id.in_(select(Venue.id).where(Venue.committee_id == actor.committee_id)),
        FeedToken.group_id.in_(select(Group.id).where(Group.committee_id == actor.committee_id)),
    )


def create_token(
    session: Session,
    actor: User | None,
    *,
    venue_id: int | None = None,
    group_id: int | None = None,
) -> tuple[FeedToken, str]:
    """A new feed token for a venue (owners only) or a group; returns it and the secret,
    which is not stored and cannot be shown again."""
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    if (venue_id is None) == (group_id is None):
        raise ValueError("give a venue or a group")
    if venue_id is not None:
        venue = policy.get_venue(session, actor, venue_id)
        if not policy.can_run_venue(actor, venue):
            raise NotAllowed("owner_only", _("Only the venue's unit may do this."))
    else:
        group = session.scalars(
            select(Group).where(Group.id == group_id, policy.groups_acted_for_by(actor))
        ).one_or_none()
        if group is None:
            raise NotFound("group_not_found", _("No such group."))
    secret = secrets.token_urlsafe(24)
    token = FeedToken(
        token_hash=token_hash(secret),
        venue_id=venue_id,
        group_id=group_id,
        created_by_id=actor.id,
    )
    session.add(token)
    session.flush()
    record(
        session,
        actor,
        "feed.create",
        token,
        committee_id=actor.committee_id,
        venue_id=venue_id,
        group_id=group_id,
    )
    return token, secret


def tokens_of(session: Session, actor: User) -> list[FeedToken]:
    """The live tokens ``actor`` created."""
    return list(
        session.scalars(
            select(FeedToken)
            .where(FeedToken.created_by_id == actor.id, FeedToken.revoked_at.is_(None))
            .order_by(FeedToken.created_at.desc(), FeedToken.id.desc())
        )
    )


def revoke(session: Session, actor: User | None, token_id: int, now: datetime) -> FeedToken:
    """Stop a feed link working (its creator, or the committee admin)."""
    token = (
        None
        if actor is None
        else session.scalars(
            select(FeedToken).where(FeedToken.id == token_id, revocable_feeds(actor))
        ).one_or_none()
    )
    if token is None:
        raise NotFound("feed_not_found", _("No such feed."))
    if token.revoked_at is None:
        token.revoked_at = now
        record(session, actor, "feed.revoke", token, committee_id=_committee_of(session, token))
    return token


def _committee_of(session: Session, token: FeedToken) -> int | None:
    if token.venue_id is not None:
        return session.scalar(select(Venue.committee_id).where(Venue.id == token.venue_id))
    return session.scalar(select(Group.committee_id).where(Group.id == token.group_id))


def resolve(session: Session, secret: str) -> FeedToken | None:
    """The live token for ``secret``, or None (unknown or revoked)."""
    if not secret or len(secret) > 100:
        return None
    return session.scalars(
        select(FeedToken).where(
            FeedToken.token_hash == token_hash(secret), FeedToken.revoked_at.is_(None)
        )
    ).one_or_none()


def feed_title(session: Session, token: FeedToken) -> str:
    if token.venue_id is not None:
        venue = session.get(Venue, token.venue_id)
        return venue.name if venue else ""
    group = session.get(Group, token.group_id)
    return group.name if group else ""


def calendar_bytes(session: Session, token: FeedToken, now: datetime) -> bytes:
    """The feed as an iCalendar document: the bookings from ``PAST_DAYS`` ago on that still
    hold (pending, confirmed) or were used (completed)."""
    stmt = (
        select(Booking)
        .where(
            Booking.status.in_(SHOWN),
            Booking.end_at > now - timedelta(days=PAST_DAYS),
            Booking.start_at < now + timedelta(days=FUTURE_DAYS),
        )
        .options(
            selectinload(Booking.venue),
            selectinload(Booking.group),
            selectinload(Booking.allocations),
        )
        .order_by(Booking.start_at, Booking.id)
    )
    if token.venue_id is not None:
        stmt = stmt.where(Booking.venue_id == token.venue_id)
    else:
        stmt = stmt.where(Booking.group_id == token.group_id)
    cal = Calendar()
    cal.add("prodid", "-//mapservice//venue bookings//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", feed_title(session, token))
    for b in session.scalars(stmt):
        numbers = "、".join(str(n) for n in b.unit_numbers)
        event = Event()
        event.add("uid", f"booking-{b.id}@mapservice")
        event.add("dtstamp", b.updated_at or now)
        event.add("dtstart", b.start_at)
        event.add("dtend", b.end_at)
        if token.venue_id is not None:
            summary = f"{b.group.name} · {_('units %(numbers)s', numbers=numbers)}"
        else:
            summary = f"{b.venue.name} · {_('units %(numbers)s', numbers=numbers)}"
        event.add("summary", summary)
        if b.venue.address:
            event.add("location", b.venue.address)
        if b.purpose:
            event.add("description", b.purpose)
        event.add("status", "TENTATIVE" if b.status == BookingStatus.PENDING.value else "CONFIRMED")
        cal.add_component(event)
    if token.group_id is not None:
        _add_activities(session, cal, token.group_id, now)
    return bytes(cal.to_ical())


def _add_activities(session: Session, cal: Calendar, group_id: int, now: datetime) -> None:
    """A group's feed also shows the activities it signed up for (waitlisted: tentative)."""
    rows = session.execute(
        select(Activity, SignUp.state, SignUp.headcount)
        .join(SignUp, SignUp.activity_id == Activity.id)
        .where(
            SignUp.group_id == group_id,
            SignUp.state.in_(("confirmed", "waitlisted")),
            Activity.status != "cancelled",
            Activity.end_at > now - timedelta(days=PAST_DAYS),
            Activity.start_at < now + timedelta(days=FUTURE_DAYS),
        )
        .options(selectinload(Activity.venue))
        .order_by(Activity.start_at, Activity.id)
    )
    for activity, state, headcount in rows:
        event = Event()
        event.add("uid", f"activity-{activity.id}@mapservice")
        event.add("dtstamp", activity.updated_at or now)
        event.add("dtstart", activity.start_at)
        event.add("dtend", activity.end_at)
        event.add("summary", f"{activity.title} · {_('%(n)s people', n=headcount)}")
        venue = activity.venue
        place = venue.address or venue.name if venue is not None else activity.site_name
        if place:
            event.add("location", place)
        if activity.description:
            event.add("description", activity.description)
        event.add("status", "CONFIRMED" if state == "confirmed" else "TENTATIVE")
        cal.add_component(event)
