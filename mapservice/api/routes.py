"""The /api/v1 endpoints: the same operations the pages use, as JSON."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import url_for
from sqlalchemy import func, or_, select

from mapservice import policy
from mapservice.api import schemas as s
from mapservice.api.framework import ApiError, api_user, db, endpoint
from mapservice.booking import capacity, engine
from mapservice.core.coords import from_wgs84
from mapservice.core.errors import NotAllowed
from mapservice.core.i18n import N_, _, lang
from mapservice.core.opening import open_intervals
from mapservice.core.venue_io import VenueRow
from mapservice.core.vocab import BookingStatus, VenueType
from mapservice.models import Booking, BookingAllocation, Committee, Group, User, Venue
from mapservice.operations import venue_search
from mapservice.operations import venues as venue_ops
from mapservice.web.database import end_read_phase, end_write_phase

READ_ERRORS = (401, 403, 404, 422, 429)
WRITE_ERRORS = (400, 401, 403, 404, 409, 422, 429)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ venues


def venue_feature(
    venue: Venue, crs: str = "wgs84", distance: float | None = None, hours: str | None = None
) -> s.VenueFeature:
    street = venue.street
    return _feature(
        venue,
        venue.unit.name,
        street.name if street else None,
        bool(street and street.approximate),
        venue.hours_text if hours is None else hours,
        crs,
        distance,
    )


def row_feature(row: Any, crs: str = "wgs84", distance: float | None = None) -> s.VenueFeature:
    """:func:`venue_feature` of a :func:`venue_search.shown_rows` row."""
    return _feature(
        row,
        row.unit_name,
        row.street_name,
        bool(row.street_approximate),
        venue_search.shown_hours(row.hours_raw),
        crs,
        distance,
    )


def _feature(
    venue: Any,
    unit: str,
    street: str | None,
    approximate: bool,
    hours: str,
    crs: str,
    distance: float | None,
) -> s.VenueFeature:
    """A venue (an object or a row with the same attribute names) as a GeoJSON feature."""
    lon, lat = from_wgs84(venue.lon, venue.lat, crs) if crs != "wgs84" else (venue.lon, venue.lat)
    kind = VenueType(venue.type)
    return s.VenueFeature(
        id=venue.id,
        geometry=s.PointGeometry(coordinates=[round(lon, 7), round(lat, 7)]),
        properties=s.VenueProperties(
            **venue_ops.venue_values(venue),
            id=venue.id,
            type_label=kind.label(lang()),
            unit_id=venue.unit_id,
            unit=unit,
            street=street,
            street_approximate=approximate,
            hours=hours,
            retired=venue.retired,
            distance_m=None if distance is None else round(distance, 1),
            url=url_for("venues.detail", venue_id=venue.id),
        ),
    )


@endpoint(
    "GET",
    "/venues",
    summary=N_("Venues as GeoJSON, filtered and paginated"),
    tag="venues",
    query=s.VenueQuery,
    response=s.VenueCollection,
    errors=READ_ERRORS,
)
def list_venues(query: s.VenueQuery) -> s.VenueCollection:
    user = api_user()
    centre: tuple[float, float] | None = None
    if query.near:
        lon_s, lat_s = query.near.split(",")
        centre = (float(lon_s), float(lat_s))
        if not (-180 <= centre[0] <= 180 and -90 <= centre[1] <= 90):
            raise ApiError(
                422, "invalid", _("Some fields are not valid."), {"near": _("Out of range.")}
            )
    if (query.free_from is None) != (query.free_to is None):
        raise ApiError(
            422,
            "invalid",
            _("Some fields are not valid."),
            {"free_to": _("Give both free_from and free_to.")},
        )
    free: venue_search.FreeWindow | None = None
    if query.free_from is not None and query.free_to is not None:
        if query.free_to <= query.free_from or query.free_to - query.free_from > timedelta(days=31):
            raise ApiError(
                422,
                "invalid",
                _("Some fields are not valid."),
                {"free_to": _("Must be after free_from, within 31 days.")},
            )
        free = venue_search.FreeWindow(query.free_from, query.free_to, query.units)
    flt = venue_search.VenueFilter(
        types=query.type.split(",") if query.type else (),
        unit_id=query.unit,
        street_id=query.street,
        min_capacity=query.min_capacity,
        text=query.q,
        near=centre,
        radius_km=query.radius_km,
    )
    if centre is None and free is None:
        # Nothing to compute in Python: count and paginate in SQL.
        stmt = venue_search.statement(user, flt)
        total = db().scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        ids = list(
            db().scalars(
                stmt.with_only_columns(Venue.id)
                .order_by(Venue.id)
                .offset((query.page - 1) * query.per_page)
                .limit(query.per_page)
            )
        )
        rows = venue_search.shown_rows(db(), ids)
        return s.VenueCollection(
            features=[row_feature(rows[i], query.crs) for i in ids],
            meta=s.PageMeta(page=query.page, per_page=query.per_page, total=total, crs=query.crs),
        )
    # Search on bare rows; the page shown is then read in one query (shown_rows).
    found = venue_search.find(db(), user, flt, free, _now())
    page = found[(query.page - 1) * query.per_page : query.page * query.per_page]
    rows = venue_search.shown_rows(db(), [f.id for f in page])
    return s.VenueCollection(
        features=[row_feature(rows[f.id], query.crs, f.distance_m) for f in page],
        meta=s.PageMeta(page=query.page, per_page=query.per_page, total=len(found), crs=query.crs),
    )


@endpoint(
    "GET",
    "/venues/{venue_id}",
    summary=N_("One venue"),
    tag="venues",
    response=s.VenueFeature,
    errors=READ_ERRORS,
)
def get_venue(venue_id: int) -> s.VenueFeature:
    return venue_feature(policy.get_venue(db(), api_user(), venue_id))


@endpoint(
    "GET",
    "/venues/{venue_id}/availability",
    summary=N_("Free and occupied intervals"),
    tag="venues",
    query=s.AvailabilityQuery,
    response=s.Availability,
    errors=READ_ERRORS,
)
def venue_availability(venue_id: int, query: s.AvailabilityQuery) -> s.Availability:
    start, end = query.from_, query.to
    if end <= start or end - start > timedelta(days=31):
        raise ApiError(
            422,
            "invalid",
            _("Some fields are not valid."),
            {"to": _("Must be after from, within 31 days.")},
        )
    # The venue as this user may see it, with its time zone, hours and the closures near the
    # window, in one statement built once; the units held over it in another.
    venue, rules = engine.venue_and_rules(db(), api_user(), venue_id, start, end)
    tz = rules.tz
    opens = open_intervals(rules.ranges, [(a, b) for a, b, _r in rules.closures], start, end, tz)
    holds = capacity.held_at(db(), venue.id, start, end, _now())
    intervals: list[s.Interval] = []
    cursor = start
    for a, b in opens:
        if cursor < a:
            intervals.append(
                s.Interval(
                    start=cursor,
                    end=a,
                    free_units=0,
                    capacity_units=venue.capacity_units,
                    open=False,
                )
            )
        for x, y, taken in capacity.timeline(venue.capacity_units, holds, a, b):
            intervals.append(
                s.Interval(
                    start=x,
                    end=y,
                    free_units=venue.capacity_units - taken,
                    capacity_units=venue.capacity_units,
                    open=True,
                )
            )
        cursor = b
    if cursor < end:
        intervals.append(
            s.Interval(
                start=cursor, end=end, free_units=0, capacity_units=venue.capacity_units, open=False
            )
        )
    # Instants in the committee's local time, as people read them.
    for iv in intervals:
        iv.start, iv.end = iv.start.astimezone(tz), iv.end.astimezone(tz)
    return s.Availability(venue_id=venue.id, intervals=intervals)


def _committee() -> Committee:
    user = api_user()
    assert user is not None
    committee = db().get(Committee, user.committee_id)
    assert committee is not None
    return committee


@endpoint(
    "POST",
    "/venues",
    summary=N_("Register a venue (unit secretary or committee admin)"),
    tag="venues",
    body=s.VenueIn,
    response=s.VenueFeature,
    status=201,
    scope="manage",
    errors=WRITE_ERRORS,
)
def create_venue(body: s.VenueIn) -> s.VenueFeature:
    user = api_user()
    assert user is not None
    if not (user.is_admin or user.is_secretary):
        raise NotAllowed(
            "not_allowed", _("Only committee admins and unit secretaries may register venues.")
        )
    data = body.model_dump()
    if not data.get("unit"):
        if user.unit is None:
            raise ApiError(
                422,
                "invalid",
                _("Some fields are not valid."),
                {"unit": _("Name the owning unit.")},
            )
        data["unit"] = user.unit.name
    venue = venue_ops.save_venue(db(), user, _committee(), VenueRow(**data))
    return venue_feature(venue)


@endpoint(
    "PATCH",
    "/venues/{venue_id}",
    summary=N_("Change a venue (its unit's secretary or the admin)"),
    tag="venues",
    body=s.VenuePatch,
    response=s.VenueFeature,
    scope="manage",
    errors=WRITE_ERRORS,
)
def patch_venue(venue_id: int, body: s.VenuePatch) -> s.VenueFeature:
    user = api_user()
    venue = policy.get_venue(db(), user, venue_id, edit=True)
    assert user is not None
    changes = body.model_dump(exclude_unset=True)
    row = replace(venue_ops.row_of(venue), **changes)
    venue = venue_ops.save_venue(db(), user, venue.committee, row, venue)
    return venue_feature(venue)


# ------------------------------------------------------------------ bookings


def booking_out(b: Booking) -> s.BookingOut:
    entered_by = b.entered_by
    return _booking_out(
        b, b.venue.name, b.group.name, b.unit_numbers, entered_by.username if entered_by else None
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
            b, names[b.id].venue, names[b.id].group, units.get(b.id, []), names[b.id].entered_by
        )
        for b in bookings
    ]


def _booking_out(
    b: Booking, venue: str, group: str, unit_numbers: list[int], entered_by: str | None
) -> s.BookingOut:
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
    group_id = _group_id(body.group_id)
    if body.repeat is None:
        end_read_phase()
        b = engine.book(
            db(),
            user,
            body.venue_id,
            group_id,
            body.start,
            body.end,
            units=body.units,
            purpose=body.purpose,
            headcount=body.headcount,
        )
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
    result = engine.book_series(
        db(),
        user,
        body.venue_id,
        group_id,
        body.start,
        body.end,
        freq=r.freq,
        count=r.count,
        until=r.until,
        policy=r.policy,
        units=body.units,
        purpose=body.purpose,
        headcount=body.headcount,
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
    stmt = (
        select(Booking)
        .join(Venue, Venue.id == Booking.venue_id)
        .where(Venue.committee_id == user.committee_id)
    )
    if query.scope == "all":
        if not user.is_admin:
            raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    elif query.scope == "unit":
        if not user.is_secretary:
            raise NotAllowed("secretary_only", _("Only unit secretaries have a unit's venues."))
        stmt = stmt.where(Venue.unit_id == user.unit_id)
    elif user.is_booker:
        stmt = stmt.where(Booking.group_id == user.group_id)
    elif user.is_secretary:
        stmt = stmt.join(Group, Group.id == Booking.group_id).where(
            or_(Group.unit_id == user.unit_id, Booking.entered_by_id == user.id)
        )
    else:
        stmt = stmt.where(Booking.entered_by_id == user.id)
    if query.status:
        stmt = stmt.where(Booking.status == query.status)
    rows = db().scalars(stmt.order_by(Booking.start_at).limit(1000))
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


# ------------------------------------------------------------------ stats


def _stats_scope() -> Any:
    from mapservice.stats.frames import Scope

    user = api_user()
    assert user is not None
    if not (user.is_admin or user.is_secretary):
        raise NotAllowed("not_allowed", _("Only committee admins and unit secretaries see stats."))
    return Scope(user.committee_id, None if user.is_admin else user.unit_id)


@endpoint(
    "GET",
    "/stats/utilization",
    summary=N_("Utilization and sharing, grouped"),
    tag="stats",
    query=s.UtilizationQuery,
    response=s.UtilizationOut,
    scope="read",
    errors=READ_ERRORS,
)
def stats_utilization(query: s.UtilizationQuery) -> s.UtilizationOut:
    """The same figures as the dashboard (docs/stats.md), for a custom period of local days."""
    from mapservice.operations.utilization import utilization_table

    if query.to < query.from_ or (query.to - query.from_).days > 366:
        raise ApiError(
            422,
            "invalid",
            _("Some fields are not valid."),
            {"to": _("From 1 to 366 days after from.")},
        )
    user = api_user()
    assert user is not None
    table = utilization_table(db(), user, query.from_, query.to, query.group_by)
    return s.UtilizationOut(
        from_=query.from_,
        to=query.to,
        group_by=query.group_by,
        total=s.UtilizationRow.model_validate(table.total),
        rows=[s.UtilizationRow.model_validate(row) for row in table.rows],
    )


@endpoint(
    "GET",
    "/stats/coverage",
    summary=N_("Share of each street within reach of a venue type"),
    tag="stats",
    query=s.CoverageQuery,
    response=s.CoverageOut,
    scope="read",
    errors=READ_ERRORS,
)
def stats_coverage(query: s.CoverageQuery) -> s.CoverageOut:
    from mapservice.stats.report import coverage_for

    cov = coverage_for(db(), _stats_scope(), query.type, query.radius_km * 1000)
    return s.CoverageOut(
        type=query.type,
        radius_km=query.radius_km,
        crs=cov.crs,
        share=min(1.0, cov.share),
        area_km2=round(cov.area_km2, 4),
        covered_km2=round(cov.covered_km2, 4),
        streets=[
            s.StreetCoverageOut(
                name=st.name,
                area_km2=round(st.area_km2, 4),
                covered_km2=round(st.covered_km2, 4),
                share=min(1.0, max(0.0, st.share)),
                venues=st.venues,
            )
            for st in cov.streets
        ],
        uncovered_streets=[st.name for st in cov.uncovered],
    )


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
