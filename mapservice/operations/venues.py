"""Registering, editing and retiring venues, their closures and bulk import.

Every path that writes a venue goes through ``save_venue`` so the form, the importer and the
seed loader apply the same rules: the unit must be the actor's to manage and admitted, the
location must lie inside the committee's district, the street is assigned by spatial join,
opening hours must parse, durations must fit the slot length.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mapservice import policy
from mapservice.booking import engine
from mapservice.core import geo, venue_spec
from mapservice.core.coords import from_wgs84, to_wgs84
from mapservice.core.errors import (
    ClosureOverBookings,
    ImportRejected,
    NotAllowed,
    NotFound,
    ValidationFailed,
)
from mapservice.core.hours import HoursError, parse_hours
from mapservice.core.i18n import _, lang
from mapservice.core.venue_io import VenueRow, field_label
from mapservice.core.vocab import BookableBy, Crs, UnitStatus, VenueType
from mapservice.db import is_immediate
from mapservice.models import (
    Area,
    Booking,
    Closure,
    Committee,
    OpeningHours,
    Unit,
    User,
    Venue,
)
from mapservice.models.audit import record


@dataclass
class Region:
    """A committee's district shape and street shapes, parsed once for many venues."""

    committee: Committee
    district: Any | None
    streets: list[tuple[int, Any]] = field(default_factory=list)
    _street_of: dict[tuple[float, float], int | None] = field(default_factory=dict)

    @classmethod
    def of(cls, session: Session, committee: Committee) -> Region:
        areas = session.scalars(select(Area).where(Area.committee_id == committee.id)).all()
        district = next((a.shape() for a in areas if a.level == "district"), None)
        streets = [(a.id, a.shape()) for a in areas if a.level == "street"]
        return cls(committee, district, streets)

    def contains(self, lon: float, lat: float) -> bool:
        return self.district is None or geo.contains(self.district, lon, lat)

    def locate(
        self, lon: float, lat: float, crs: str, errors: dict[str, str]
    ) -> tuple[float, float] | None:
        """The point in WGS-84 if it lies in the district; else None, the problem put in
        ``errors`` (``crs`` or ``lon``)."""
        system = Crs.parse(crs)
        if system is None:
            errors["crs"] = _("Unknown coordinate system '%(value)s'.", value=crs[:20])
            return None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            errors["lon"] = _("Longitude must be within ±180 and latitude within ±90.")
            return None
        point = to_wgs84(lon, lat, str(system))
        if not self.contains(*point):
            committee = self.committee
            errors["lon"] = _(
                "The location (%(lon).6f, %(lat).6f) lies outside %(region)s.",
                lon=point[0],
                lat=point[1],
                region=committee.district.name if committee.district else committee.name,
            )
            return None
        return point

    def street_id(self, lon: float, lat: float) -> int | None:
        if (lon, lat) in self._street_of:
            return self._street_of[(lon, lat)]
        return geo.street_for_point(lon, lat, self.streets) if self.streets else None

    def prefetch_streets(self, points: list[tuple[float, float]]) -> None:
        """Assign the streets of many points in one spatial join (an import's venues) instead
        of one join per venue."""
        if self.streets and points:
            streets = geo.assign_streets(points, self.streets)
            self._street_of.update(zip(points, streets, strict=True))


def _hours_message(err: HoursError) -> str:
    messages = {
        "bad_time": _("'%(value)s' is not a time (use HH:MM, e.g. 09:00)."),
        "bad_day": _("'%(value)s' is not a weekday (use Mon…Sun or 周一…周日)."),
        "bad_clause": _("'%(value)s' needs days then times, e.g. 'Mon-Fri 09:00-21:00'."),
        "bad_range": _("'%(value)s' is not a time range (use 09:00-12:00)."),
        "end_before_start": _("In '%(value)s' the end is not after the start."),
        "overlap": _("Opening ranges overlap: %(value)s."),
    }
    return messages.get(err.code, "%(value)s") % {"value": err.where(lang())}


def validate_row(
    session: Session, actor: User, region: Region, row: VenueRow, venue: Venue | None = None
) -> tuple[dict[str, str], Unit | None, tuple[float, float] | None]:
    """Check the relations a single field cannot: returns (field errors, unit, WGS-84 point)."""
    errors: dict[str, str] = {}
    committee = region.committee
    unit = session.scalars(
        select(Unit).where(Unit.committee_id == committee.id, Unit.name == row.unit.strip())
    ).one_or_none()
    if unit is None:
        errors["unit"] = _("No member unit named '%(name)s' in this committee.", name=row.unit)
    elif not session.scalar(
        select(Unit.id).where(Unit.id == unit.id, policy.units_managed_by(actor))
    ):
        errors["unit"] = _("You may only register venues of your own unit.")
    elif unit.status != UnitStatus.ACTIVE.value and (venue is None or venue.unit_id != unit.id):
        errors["unit"] = _(
            "Unit '%(name)s' is not admitted (status: %(status)s); it cannot add venues.",
            name=unit.name,
            status=UnitStatus(unit.status).label(lang()),
        )
    if VenueType.parse(row.type) is None:
        errors["type"] = _("Unknown venue type '%(value)s'.", value=row.type)
    if BookableBy.parse(row.bookable_by) is None:
        errors["bookable_by"] = _("Unknown choice '%(value)s'.", value=row.bookable_by)
    point = region.locate(row.lon, row.lat, row.crs, errors)
    try:
        ranges = parse_hours(row.hours)
    except HoursError as exc:
        errors["hours"] = _hours_message(exc)
    else:
        if row.published and not ranges:
            # Published with no hours, a venue shows on the map and can never be booked.
            errors["hours"] = _(
                "A published venue needs opening hours: with no opening hours nobody can"
                " book it. Enter the hours, or save it unpublished until they are known."
            )
    slot = row.slot_minutes
    if slot not in venue_spec.field("slot_minutes").choices:
        errors["slot_minutes"] = _("The slot length must be 15, 30, 60 or 120 minutes.")
    else:
        if row.min_duration_minutes < slot or row.min_duration_minutes % slot:
            errors["min_duration_minutes"] = _(
                "The minimum duration must be a multiple of the %(slot)s-minute slot.", slot=slot
            )
        if row.max_duration_minutes < row.min_duration_minutes or row.max_duration_minutes % slot:
            errors["max_duration_minutes"] = _(
                "The maximum duration must be a multiple of the %(slot)s-minute slot and at"
                " least the minimum duration.",
                slot=slot,
            )
    for spec in venue_spec.on("import"):
        value = getattr(row, spec.name)
        if spec.kind != "int" or spec.choices or value is None or spec.name in errors:
            continue
        lo, hi = spec.int_bounds
        if not lo <= value <= hi:
            errors[spec.name] = _("Must be from %(min)s to %(max)s.", min=lo, max=hi)
    if not row.name.strip():
        errors["name"] = _("A name is required.")
    elif unit is not None:
        clash = session.scalar(
            select(Venue.id).where(Venue.unit_id == unit.id, Venue.name == row.name.strip())
        )
        if clash is not None and (venue is None or clash != venue.id):
            errors["name"] = _("Your unit already has a venue named '%(name)s'.", name=row.name)
    return errors, unit, point


def _apply(
    venue: Venue, row: VenueRow, unit: Unit, point: tuple[float, float], region: Region
) -> None:
    venue.committee_id = region.committee.id
    venue.unit_id = unit.id
    venue.name = row.name.strip()
    venue.type = str(VenueType.parse(row.type))
    venue.entered_crs = str(Crs.parse(row.crs))
    # Rounded as the importer reads them, so an exported venue imports back unchanged.
    venue.entered_lon, venue.entered_lat = round(row.lon, 7), round(row.lat, 7)
    venue.lon, venue.lat = round(point[0], 7), round(point[1], 7)
    venue.street_id = region.street_id(*point)
    venue.address = row.address.strip()
    venue.capacity_units = row.capacity_units
    venue.max_headcount = row.max_headcount
    venue.facilities = row.facilities.strip()
    venue.phone = row.phone.strip()
    venue.slot_minutes = row.slot_minutes
    venue.min_duration_minutes = row.min_duration_minutes
    venue.max_duration_minutes = row.max_duration_minutes
    venue.max_days_ahead = row.max_days_ahead
    venue.min_notice_minutes = row.min_notice_minutes
    venue.requires_approval = row.requires_approval
    venue.bookable_by = str(BookableBy.parse(row.bookable_by))
    venue.weekly_quota_hours = row.weekly_quota_hours
    venue.published = row.published
    venue.hold_hours = row.hold_hours
    venue.cancel_cutoff_minutes = row.cancel_cutoff_minutes
    new_hours = [(r.weekday, r.start_min, r.end_min) for r in parse_hours(row.hours)]
    if [(h.weekday, h.start_min, h.end_min) for h in venue.hours] != new_hours:
        venue.hours = [OpeningHours(weekday=d, start_min=s, end_min=e) for d, s, e in new_hours]


def snapshot(venue: Venue) -> dict[str, Any]:
    return {k: v for k, v in row_of(venue).__dict__.items() if k != "row"}


def save_venue(
    session: Session,
    actor: User,
    committee: Committee,
    row: VenueRow,
    venue: Venue | None = None,
    *,
    region: Region | None = None,
    paired_unit_ids: list[int] | None = None,
    checks_in: bool | None = None,
    checked: tuple[Unit, tuple[float, float]] | None = None,
) -> Venue:
    """Create (``venue`` None) or update a venue from ``row``; raise ValidationFailed with
    every field error, changing nothing. ``checks_in`` (the form's; None: as it is): whether
    the unit checks groups in. ``checked``: the (unit, WGS-84 point) from a ``validate_row``
    and access check made earlier in this transaction (the importer's), so they are not
    repeated."""
    region = region or Region.of(session, committee)
    if checked is not None:
        unit, point = checked
    else:
        if venue is not None:
            venue = policy.get_venue(session, actor, venue.id, edit=True)
        errors, found_unit, found_point = validate_row(session, actor, region, row, venue)
        if errors or found_unit is None or found_point is None:
            raise ValidationFailed(_("Please correct the marked fields."), errors)
        unit, point = found_unit, found_point
    before = snapshot(venue) if venue is not None else None
    was_checking_in = bool(venue.checks_in) if venue is not None else False
    creating = venue is None
    if venue is None:
        venue = Venue()
        session.add(venue)
    _apply(venue, row, unit, point, region)
    if checks_in is not None:
        venue.checks_in = checks_in
    if paired_unit_ids is not None:
        venue.paired_units = list(
            session.scalars(
                select(Unit).where(Unit.committee_id == committee.id, Unit.id.in_(paired_unit_ids))
            )
        )
    session.flush()
    if creating:
        record(session, actor, "venue.create", venue, name=venue.name)
    else:
        after = snapshot(venue)
        changed = {k: [before[k], after[k]] for k in after if before and before[k] != after[k]}
        if checks_in is not None and checks_in != was_checking_in:
            changed["checks_in"] = [was_checking_in, checks_in]
        if changed:
            record(session, actor, "venue.update", venue, changes=changed)
    return venue


def set_retired(session: Session, actor: User, venue_id: int, retired: bool) -> Venue:
    """Retire (hide from the map and booking, keep its history) or reinstate a venue."""
    venue = policy.get_venue(session, actor, venue_id, edit=True)
    if venue.retired != retired:
        venue.retired = retired
        record(
            session,
            actor,
            "venue.retire" if retired else "venue.reinstate",
            venue,
            changes={"retired": [not retired, retired]},
        )
    return venue


#: How far back a closure may begin (recording last year's for the statistics is fine; a
#: year typed wrong is not) and how far ahead it may end (a venue closed for good is retired).
CLOSURE_PAST = timedelta(days=366)
CLOSURE_AHEAD = timedelta(days=731)
CLOSURE_REASON_MAX = 200


def closure_errors(
    start_at: datetime, end_at: datetime, reason: str, now: datetime
) -> dict[str, str]:
    """What is wrong with a closure's period and reason, by field (empty when nothing)."""
    errors: dict[str, str] = {}
    if start_at < now - CLOSURE_PAST:
        errors["start_at"] = _(
            "A closure may begin at most a year ago; check the year of the start."
        )
    if end_at <= start_at:
        errors["end_at"] = _("The end must be after the start.")
    elif end_at > now + CLOSURE_AHEAD:
        errors["end_at"] = _(
            "A closure may end at most two years ahead; check the year of the end. A venue"
            " that closes for good is retired instead."
        )
    if len(reason.strip()) > CLOSURE_REASON_MAX:
        errors["reason"] = _(
            "The reason may be at most %(max)s characters (it has %(n)s).",
            max=CLOSURE_REASON_MAX,
            n=len(reason.strip()),
        )
    return errors


def bookings_in(
    session: Session, venue: Venue, start_at: datetime, end_at: datetime, now: datetime
) -> list[Booking]:
    """The venue's bookings still active (pending or confirmed) that overlap
    ``[start_at, end_at)`` and have not ended, earliest first, their groups loaded."""
    stmt = (
        select(Booking)
        .where(
            Booking.venue_id == venue.id,
            Booking.status.in_(engine.ACTIVE),
            Booking.start_at < end_at,
            Booking.end_at > start_at,
            Booking.end_at > now,
        )
        .options(selectinload(Booking.group))
        .order_by(Booking.start_at, Booking.id)
    )
    return list(session.scalars(stmt))


def closure_cancel_reason(reason: str) -> str:
    """What a booking cancelled by a closure gives as its reason (and its group's notice)."""
    reason = reason.strip()
    return _("Venue closed: %(reason)s", reason=reason) if reason else _("Venue closed.")


def add_closure(
    session: Session,
    actor: User,
    venue_id: int,
    start_at: datetime,
    end_at: datetime,
    reason: str,
    *,
    cancel_bookings: Collection[int] | None = None,
    now: datetime | None = None,
    check_window: bool = True,
) -> tuple[Closure, list[Booking]]:
    """Close the venue over ``[start_at, end_at)``; returns the closure and the bookings
    cancelled for it. Raise ValidationFailed for a bad period or reason, changing nothing.

    No booking may stay active inside a closure. If the period covers pending or confirmed
    bookings, raise ClosureOverBookings listing them and change nothing, unless
    ``cancel_bookings`` names every one of them (the list the owner was shown and confirmed;
    one its group cancelled meanwhile need not be there any more): then cancel each, its
    group notified with the closure's reason, and add the closure, all in the caller's one
    transaction. A booking already under way cannot be
    cancelled, so a closure must begin after it. The venue is locked first, so no booking
    slips in between the check and the closure. ``check_window``: refuse periods far in the
    past or future (off only for trusted data: the demo's seed)."""
    venue = policy.get_venue(session, actor, venue_id, edit=True)
    if start_at.tzinfo is None or end_at.tzinfo is None:
        raise ValueError("closure instants must be timezone-aware")
    now = now or datetime.now(UTC)
    errors = closure_errors(start_at, end_at, reason, now)
    if not check_window:
        errors = {k: v for k, v in errors.items() if k != "start_at"}
        if end_at > start_at:
            errors.pop("end_at", None)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    if is_immediate(session):  # PostgreSQL: the venue's row lock; SQLite: the writer's
        engine.lock_venue(session, venue.id)
    engine.expire_holds(session, now, venue.id)
    hits = bookings_in(session, venue, start_at, end_at, now)
    under_way = [b for b in hits if b.start_at <= now]
    if under_way:
        tz = ZoneInfo(venue.committee.timezone)
        first = under_way[0]
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "start_at": _(
                    "%(group)s's booking is under way until %(end)s and cannot be cancelled;"
                    " let the closure begin at %(end)s or later.",
                    group=first.group.name,
                    end=first.end_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                )
            },
        )
    if hits and (cancel_bookings is None or not {b.id for b in hits} <= set(cancel_bookings)):
        raise ClosureOverBookings(
            _(
                "This closure covers %(n)s bookings that are still active.",
                n=len(hits),
            ),
            hits,
            changed=cancel_bookings is not None,
        )
    cancelled = []
    for booking in hits:
        cancelled += engine.cancel(
            session, actor, booking.id, reason=closure_cancel_reason(reason), now=now
        )
    closure = Closure(start_at=start_at, end_at=end_at, reason=reason.strip())
    venue.closures.append(closure)
    session.flush()
    record(
        session,
        actor,
        "closure.create",
        venue,
        start=start_at,
        end=end_at,
        reason=reason,
        cancelled=[b.id for b in cancelled],
    )
    return closure, cancelled


def delete_closure(session: Session, actor: User, venue_id: int, closure_id: int) -> None:
    venue = policy.get_venue(session, actor, venue_id, edit=True)
    closure = next((c for c in venue.closures if c.id == closure_id), None)
    if closure is None:
        raise NotFound("closure_not_found", _("No such closure."))
    venue.closures.remove(closure)
    record(session, actor, "closure.delete", venue, start=closure.start_at, end=closure.end_at)


def venue_values(venue: Any) -> dict[str, Any]:
    """The one serializer of a venue's own fields (an ORM venue or a row with the same
    attribute names), as the files and the API carry them: the venue spec's ``STORED``
    fields by name. ``row_of`` adds the unit, street, hours and coordinates for a file;
    the API (``api/routes``) adds them, the id, labels and links for its properties."""
    return {name: getattr(venue, name) for name in venue_spec.STORED}


def row_of(venue: Venue, crs: str | None = None) -> VenueRow:
    """The venue as an import/export row; coordinates in ``crs`` (default: as entered)."""
    crs = crs or venue.entered_crs
    if crs == venue.entered_crs:
        lon, lat = venue.entered_lon, venue.entered_lat
    else:
        lon, lat = from_wgs84(venue.lon, venue.lat, crs)
    return VenueRow(
        **venue_values(venue),
        unit=venue.unit.name,
        lon=lon,
        lat=lat,
        crs=crs,
        street=venue.street.name if venue.street else "",
        hours=venue.hours_text,
    )


#: Venues loaded at once when rows are produced for an export.
EXPORT_BATCH = 1000


def row_batches(
    session: Session, ids: Sequence[int], crs: str | None = None, batch: int | None = None
) -> Iterator[list[VenueRow]]:
    """The venues ``ids`` (in that order; ids no longer found skipped) as export rows,
    ``batch`` venues at a time with their unit, street and hours, each batch let go of before
    the next is loaded: an export of a city's venues never holds them all."""
    batch = batch or EXPORT_BATCH
    for i in range(0, len(ids), batch):
        part = list(ids[i : i + batch])
        found = {
            v.id: v
            for v in session.scalars(
                select(Venue)
                .where(Venue.id.in_(part))
                .options(
                    selectinload(Venue.unit), selectinload(Venue.street), selectinload(Venue.hours)
                )
            )
        }
        rows = [row_of(found[v], crs) for v in part if v in found]
        session.expunge_all()
        yield rows


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def check_import(
    session: Session, actor: User, committee: Committee, rows: list[VenueRow], region: Region
) -> tuple[list[tuple[VenueRow, Venue | None, Unit, tuple[float, float]]], list[str]]:
    """Validate every row against the database without writing: the plan (row, the venue
    it updates or None, its unit, its WGS-84 point) and a row-numbered message per problem."""
    problems: list[str] = []
    plan: list[tuple[VenueRow, Venue | None, Unit, tuple[float, float]]] = []
    for row in rows:
        existing = session.scalars(
            select(Venue)
            .join(Unit, Venue.unit_id == Unit.id)
            .where(
                Unit.committee_id == committee.id,
                Unit.name == row.unit.strip(),
                Venue.name == row.name.strip(),
            )
        ).one_or_none()
        errors, unit, point = validate_row(session, actor, region, row, existing)
        if existing is not None and not errors:
            try:
                policy.get_venue(session, actor, existing.id, edit=True)
            except (NotAllowed, NotFound) as exc:
                errors["unit"] = exc.message
        for fld, msg in errors.items():
            problems.append(
                _(
                    "Row %(row)s, %(field)s: %(message)s",
                    row=row.row,
                    field=field_label(fld, lang()),
                    message=msg,
                )
            )
        if unit is not None and point is not None:
            plan.append((row, existing, unit, point))
    return plan, problems


def import_venues(
    session: Session, actor: User, committee: Committee, rows: list[VenueRow]
) -> ImportReport:
    """All-or-nothing import: rows match existing venues by (unit, name) and update them,
    otherwise create. On any bad row raise ImportRejected listing every one, before writing
    anything (the caller rolls back all the same)."""
    region = Region.of(session, committee)
    plan, problems = check_import(session, actor, committee, rows, region)
    if problems:
        raise ImportRejected(problems)
    region.prefetch_streets([point for _row, _existing, _unit, point in plan])
    report = ImportReport()
    for row, existing, unit, point in plan:
        if existing is not None and {
            k: v for k, v in row.__dict__.items() if k not in ("row", "street")
        } == {k: v for k, v in row_of(existing).__dict__.items() if k not in ("row", "street")}:
            report.unchanged += 1
            continue
        save_venue(session, actor, committee, row, existing, region=region, checked=(unit, point))
        if existing is None:
            report.created += 1
        else:
            report.updated += 1
    record(session, actor, "venue.import", committee, committee_id=committee.id, **report.__dict__)
    return report
