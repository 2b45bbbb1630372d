"""The /api/v1 booking endpoints: book (one or a series), my bookings, the lifecycle actions,
and the 409 body with the alternatives."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import g
from sqlalchemy import select

from mapservice.api import schemas as s
from mapservice.api.common import READ_ERRORS, WRITE_ERRORS
from mapservice.api.framework import ApiError, api_user, db, endpoint
from mapservice.booking import engine
from mapservice.core.errors import NotAllowed
from mapservice.core.i18n import N_, _
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, BookingAllocation, Group, User, Venue
from mapservice.operations.bookings import my_bookings
from mapservice.operations.phone_bookings import caller_problems, require_phone_staff
from mapservice.policy import can_run_venue, token_allows
from mapservice.web.database import end_read_phase, end_write_phase

# ------------------------------------------------------------------ bookings


def booking_out(b: Booking) -> s.BookingOut:
    entered_by = b.entered_by
    return _booking_out(
        b,
        b.venue.name,
        b.group.name,
        b.unit_numbers,
        entered_by.username if entered_by else None,
        can_run_venue(api_user(), b.venue),
    )


def created_out(bookings: list[Booking]) -> list[s.BookingOut]:
    """:func:`booking_out` of bookings just written, their venue, group and author's names
    and their units read in two queries (the engine's transactions expired the related
    objects: loading each again costs a query apiece)."""
    if not bookings:
        return []
    ids = [b.id for b in bookings]
    names = {
        r.id: r
        for r in db().execute(
            select(
                Booking.id,
                Venue.name.label("venue"),
                Group.name.label("group"),
                User.username.label("entered_by"),
                Venue.committee_id,
                Venue.unit_id,
            )
            .join(Venue, Venue.id == Booking.venue_id)
            .join(Group, Group.id == Booking.group_id)
            .outerjoin(User, User.id == Booking.entered_by_id)
            .where(Booking.id.in_(ids))
        )
    }
    units: dict[int, list[int]] = {}
    for booking_id, unit_no in db().execute(
        select(BookingAllocation.booking_id, BookingAllocation.unit_no)
        .where(BookingAllocation.booking_id.in_(ids))
        .order_by(BookingAllocation.booking_id, BookingAllocation.unit_no)
    ):
        units.setdefault(booking_id, []).append(unit_no)
    return [
        _booking_out(
            b,
            names[b.id].venue,
            names[b.id].group,
            units.get(b.id, []),
            names[b.id].entered_by,
            can_run_venue(api_user(), names[b.id]),
        )
        for b in bookings
    ]


def _booking_out(
    b: Booking,
    venue: str,
    group: str,
    unit_numbers: list[int],
    entered_by: str | None,
    owner: bool,
) -> s.BookingOut:
    """The booking as answered; who called (a phone booking) only to the venue's unit."""
    return s.BookingOut(
        id=b.id,
        venue_id=b.venue_id,
        venue=venue,
        group_id=b.group_id,
        group=group,
        start=b.start_at,
        end=b.end_at,
        units=b.units,
        unit_numbers=unit_numbers,
        status=BookingStatus(b.status),
        status_reason=b.status_reason,
        purpose=b.purpose,
        headcount=b.headcount,
        series_id=b.series_id,
        hold_expires_at=b.hold_expires_at,
        entered_by=entered_by,
        caller_name=b.caller_name if owner else None,
        caller_phone=b.caller_phone if owner else None,
    )


def _group_id(body_group: int | None) -> int:
    user = api_user()
    assert user is not None
    if body_group is not None:
        return body_group
    if user.group_id is None:
        raise ApiError(
            422,
            "invalid",
            _("Some fields are not valid."),
            {"group_id": _("Say which group the booking is for.")},
        )
    return user.group_id


def _caller(body: s.BookingIn) -> dict[str, str]:
    """A phone booking's caller: only from a secretary's or the admin's token with the manage
    scope (403 otherwise), both name and phone, the phone a phone number (422)."""
    if body.caller_name is None and body.caller_phone is None:
        return {}
    token = g.get("api_token")
    try:
        require_phone_staff(api_user())
    except NotAllowed as exc:
        raise ApiError(403, exc.code, exc.message) from exc
    if token is None or not token_allows(token, "manage"):
        raise ApiError(
            403, "insufficient_scope", _("This token lacks the '%(scope)s' scope.", scope="manage")
        )
    problems = caller_problems(body.caller_name, body.caller_phone)
    if problems:
        raise ApiError(422, "invalid", _("Some fields are not valid."), problems)
    return {
        "caller_name": (body.caller_name or "").strip(),
        "caller_phone": (body.caller_phone or "").strip(),
    }


@endpoint(
    "POST",
    "/bookings",
    summary=N_("Book (single or series)"),
    tag="bookings",
    body=s.BookingIn,
    response=s.SeriesOut,
    status=201,
    scope="book",
    errors=WRITE_ERRORS,
)
def create_booking(body: s.BookingIn) -> s.SeriesOut:
    """201 with the booking(s) as a series result (a single booking is a series of one without
    a series id); 409 with conflicts and alternatives; 422 with the rule and field."""
    user = api_user()
    request = engine.BookingRequest(
        body.venue_id,
        _group_id(body.group_id),
        body.start,
        body.end,
        body.units,
        body.purpose,
        body.headcount,
        **_caller(body),
    )
    if body.repeat is None:
        end_read_phase()
        b = engine.book_request(db(), user, request)
        end_write_phase()
        (out,) = created_out([b])
        return s.SeriesOut(
            series_id="",
            bookings=[out],
            occurrences=[s.OccurrenceOut(start=b.start_at, end=b.end_at, ok=True, booking_id=b.id)],
        )
    r = body.repeat
    if (r.count is None) == (r.until is None):
        raise ApiError(
            422,
            "invalid",
            _("Some fields are not valid."),
            {"repeat": _("Give either count or until.")},
        )
    result = engine.book_series_request(
        db(), user, request, freq=r.freq, count=r.count, until=r.until, policy=r.policy
    )
    end_write_phase()
    return s.SeriesOut(
        series_id=result.series_id,
        bookings=created_out(result.booked),
        occurrences=[occurrence_out(o) for o in result.outcomes],
    )


def occurrence_out(o: engine.Outcome) -> s.OccurrenceOut:
    return s.OccurrenceOut(
        start=o.start,
        end=o.end,
        ok=o.error is None,
        booking_id=o.booking.id if o.booking else None,
        code=o.error.code if o.error else None,
        message=o.error.message if o.error else None,
    )


@endpoint(
    "GET",
    "/bookings",
    summary=N_("Bookings: mine, my unit's venues', or all (admin)"),
    tag="bookings",
    query=s.BookingsQuery,
    response=s.BookingList,
    scope="read",
    errors=READ_ERRORS,
)
def list_bookings(query: s.BookingsQuery) -> s.BookingList:
    user = api_user()
    assert user is not None
    statuses = (query.status,) if query.status else ()
    rows = my_bookings(db(), user, scope=query.scope, statuses=statuses)
    return s.BookingList(bookings=[booking_out(b) for b in rows])


def _action(name: str, body_model: type | None, summary: str) -> None:
    def view(booking_id: int, body: Any = None) -> s.BookingOut | s.BookingList:
        user = api_user()
        if name == "confirm":
            return booking_out(engine.confirm(db(), user, booking_id))
        if name == "decline":
            return booking_out(engine.decline(db(), user, booking_id, body.reason))
        if name == "cancel":
            done = engine.cancel(db(), user, booking_id, scope=body.scope, reason=body.reason)
            return s.BookingList(bookings=[booking_out(b) for b in done])
        if name == "reschedule":
            return booking_out(
                engine.reschedule(db(), user, booking_id, body.start, body.end, units=body.units)
            )
        return booking_out(engine.check_in(db(), user, booking_id, no_show=name == "no-show"))

    view.__name__ = f"booking_{name.replace('-', '_')}"
    endpoint(
        "POST",
        f"/bookings/{{booking_id}}/{name}",
        summary=summary,
        tag="bookings",
        body=body_model,
        response=s.BookingList if name == "cancel" else s.BookingOut,
        scope="book" if name in ("cancel", "reschedule") else "manage",
        errors=WRITE_ERRORS,
    )(view)


_action("confirm", None, N_("Confirm a pending request (the venue's unit)"))
_action("decline", s.DeclineIn, N_("Decline a pending request with a reason (the venue's unit)"))
_action("cancel", s.CancelIn, N_("Cancel one booking, this and the following, or the whole series"))
_action("reschedule", s.RescheduleIn, N_("Move a booking atomically"))
_action("check-in", None, N_("Record that the group came (the venue's unit)"))
_action("no-show", None, N_("Record that the group did not come (the venue's unit)"))


def conflict_body(exc: Any) -> dict[str, Any]:
    alts = exc.alternatives
    return {
        "code": exc.code,
        "message": exc.message,
        "fields": {},
        "conflicts": [asdict(c) for c in exc.conflicts],
        "alternatives": {
            "windows": [{"start": a, "end": b} for a, b in (alts.windows if alts else [])],
            "venues": [asdict(v) for v in (alts.venues if alts else [])],
        },
    }
