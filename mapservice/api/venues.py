"""The /api/v1 venue endpoints: list, search, detail, availability, create, change."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from flask import url_for
from sqlalchemy import func, select

from mapservice import policy
from mapservice.api import schemas as s
from mapservice.api.common import READ_ERRORS, WRITE_ERRORS, utcnow
from mapservice.api.framework import ApiError, api_user, db, endpoint
from mapservice.booking import capacity, engine
from mapservice.core.coords import from_wgs84
from mapservice.core.errors import NotAllowed
from mapservice.core.i18n import N_, _, lang
from mapservice.core.opening import open_intervals
from mapservice.core.venue_io import VenueRow
from mapservice.core.vocab import VenueType
from mapservice.models import Committee, Venue
from mapservice.operations import venue_search
from mapservice.operations import venues as venue_ops
from mapservice.operations.settings import venue_defaults

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


#: The longest availability window: a signed-in caller's (a token), and a visitor's, whose
#: answer is also bounded — a month of a busy 100-unit venue is thousands of intervals.
WINDOW_DAYS = 31
PUBLIC_WINDOW_DAYS = 7
PUBLIC_MAX_INTERVALS = 1000


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
    found = venue_search.find(db(), user, flt, free, utcnow())
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
    days = WINDOW_DAYS if api_user() is not None else PUBLIC_WINDOW_DAYS
    if end <= start or end - start > timedelta(days=days):
        raise ApiError(
            422,
            "invalid",
            _("Some fields are not valid."),
            {"to": _("Must be after from, within %(n)s days.", n=days)},
        )
    # The venue as this user may see it, with its time zone, hours and the closures near the
    # window, in one statement built once; the units held over it in another.
    venue, rules = engine.venue_and_rules(db(), api_user(), venue_id, start, end)
    tz = rules.tz
    opens = open_intervals(rules.ranges, [(a, b) for a, b, _r in rules.closures], start, end, tz)
    holds = capacity.held_at(db(), venue.id, start, end, utcnow())
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
    if api_user() is None and len(intervals) > PUBLIC_MAX_INTERVALS:
        raise ApiError(
            422,
            "too_many_intervals",
            _(
                "The answer would hold %(n)s intervals, more than %(max)s: ask for a shorter"
                " window, or use an access token.",
                n=len(intervals),
                max=PUBLIC_MAX_INTERVALS,
            ),
            {"to": _("Ask for a shorter window.")},
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
    committee = _committee()
    data = {**venue_defaults(committee), **body.model_dump(exclude_unset=True)}
    if not data.get("unit"):
        if user.unit is None:
            raise ApiError(
                422,
                "invalid",
                _("Some fields are not valid."),
                {"unit": _("Name the owning unit.")},
            )
        data["unit"] = user.unit.name
    venue = venue_ops.save_venue(db(), user, committee, VenueRow(**data))
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
