"""The venue registry pages: list, detail, register/edit (with a click-to-place map), retire,
closures and export."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from mapservice import policy
from mapservice.core.errors import ClosureOverBookings, ValidationFailed
from mapservice.core.hours import day_text
from mapservice.core.i18n import _, lang
from mapservice.core.ids import as_id
from mapservice.core.opening import opening_week
from mapservice.core.venue_export import STREAMED, venue_chunks
from mapservice.core.venue_io import VenueRow, write_venues
from mapservice.core.vocab import BookableBy, Crs, VenueType
from mapservice.maps import map_labels, picker_map, venue_map
from mapservice.models import Booking, Committee, OpeningHours, Unit, Venue
from mapservice.operations import mapview as map_ops
from mapservice.operations import venues as ops
from mapservice.operations.settings import venue_defaults
from mapservice.web.auth import current_actor
from mapservice.web.bookings import booking_form, booking_panel, booking_prefill
from mapservice.web.database import get_db
from mapservice.web.forms import ClosureForm, EmptyForm, VenueForm, options
from mapservice.web.maps import configured_tiles, map_parts
from mapservice.web.mapview import committee_asked, staff_counts
from mapservice.web.streaming import download, with_read_session

bp = Blueprint("venues", __name__, url_prefix="/venues")


def _filtered_select(args: Any, committee: Committee) -> Select[Venue]:
    """The venues of ``committee`` the user may see (its public ones; all of them for its
    staff) that pass the list's filters, retired ones only when asked for (unit name, then
    venue name): the list's and its exports' statement."""
    actor = current_actor()
    stmt = (
        policy.select_venues_seen_by(actor)
        .join(Unit, Venue.unit_id == Unit.id)
        .where(Venue.committee_id == committee.id)
    )
    if args.get("q"):
        like = f"%{args['q'].strip()}%"
        stmt = stmt.where(
            or_(
                Venue.name.ilike(like),
                Venue.address.ilike(like),
                Unit.name.ilike(like),
                Venue.facilities.ilike(like),
            )
        )
    if args.get("type"):
        stmt = stmt.where(Venue.type == args["type"])
    if as_id(args.get("unit")) is not None:
        stmt = stmt.where(Venue.unit_id == as_id(args.get("unit")))
    if args.get("mine") and actor is not None and actor.unit_id:
        stmt = stmt.where(Venue.unit_id == actor.unit_id)
    if not args.get("retired"):
        stmt = stmt.where(Venue.retired.is_(False))
    return stmt.order_by(Unit.name, Venue.name)


#: Venues a page of the list shows. A city's committee has ten thousand: the whole list as
#: one page (the page its staff land on after logging in) was 5 MB of HTML and held every
#: venue, its unit and street as objects in the worker (46 MB at its peak, bench #8).
PER_PAGE = 100


@bp.route("/")
def index() -> Any:
    """The venues of one committee (``?committee=SLUG``; the user's own by default, a
    visitor's the first), named in the heading, with a choice of committee when there are
    several; the same venues as that committee's map shows the same user, :data:`PER_PAGE`
    a page (``?page=N``; past the last page, the last)."""
    actor = current_actor()
    db = get_db()
    committee = committee_asked(actor)
    stmt = _filtered_select(request.args, committee)
    matching = stmt.order_by(None).with_only_columns(Venue.id)
    total = db.scalar(select(func.count()).select_from(matching.subquery())) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = min(as_id(request.args.get("page")) or 1, pages)
    venues = list(
        db.scalars(
            stmt.options(selectinload(Venue.unit), selectinload(Venue.street))
            .offset((page - 1) * PER_PAGE)
            .limit(PER_PAGE)
        )
    )
    hourless = hourless_venue_ids()
    # Counted over every venue the filters keep, not only this page's.
    hourless_count = (
        db.scalar(
            select(func.count()).select_from(
                matching.where(Venue.id.in_(sorted(hourless))).subquery()
            )
        )
        if hourless
        else 0
    )
    units, _streets = map_ops.filter_choices(db, actor, committee)
    return render_template(
        "venues/list.html",
        venues=venues,
        total=total,
        page=page,
        pages=pages,
        hourless=hourless,
        hourless_count=hourless_count,
        units=units,
        args=request.args,
        page_args={k: v for k, v in request.args.items() if k != "page"},
        committee=committee,
        committees=list(db.scalars(select(Committee).order_by(Committee.id))),
        counts=staff_counts(actor, committee),
    )


def _committee() -> Committee:
    actor = current_actor()
    if actor is None:
        abort(401)
    committee = get_db().get(Committee, actor.committee_id)
    assert committee is not None
    return committee


def _picker(form: VenueForm, committee: Committee, venue: Venue | None) -> Any:
    """The registration picker: the configured base maps, the boundaries, the point as the
    form has it (when known in WGS-84) and the committee's other venues for orientation."""
    db = get_db()
    point: tuple[float, float] | None = None
    if request.method == "GET" and venue is not None:
        point = (venue.lon, venue.lat)
    elif form.crs.data == "wgs84":
        try:
            point = (float(form.lon.data), float(form.lat.data))
        except (TypeError, ValueError):
            point = None
    # The committee's venues for orientation, from the map's own (cached) data: a city's
    # 10,000 would weigh 0.2 MB in the page.
    nearby = url_for("map.columns", committee=committee.slug)
    m = picker_map(
        areas=map_ops.load_areas(db, committee),
        tiles=configured_tiles(),
        point=point,
        nearby=nearby,
        lang=lang(),
        labels=map_labels(),
    )
    return map_parts(m)


def _fill_choices(form: VenueForm, committee: Committee) -> None:
    actor = current_actor()
    db = get_db()
    managed = db.scalars(
        select(Unit).where(policy.units_managed_by(actor)).order_by(Unit.name)
    ).all()
    form.unit.choices = options([(u.name, u.name) for u in managed])
    form.type.choices = options(VenueType.choices(lang()))
    form.crs.choices = options(Crs.choices(lang()))
    form.bookable_by.choices = options(BookableBy.choices(lang()))
    all_units = db.scalars(
        select(Unit)
        .where(Unit.committee_id == committee.id, Unit.status == "active")
        .order_by(Unit.name)
    ).all()
    form.paired_units.choices = options([(u.id, u.name) for u in all_units])


def _row(form: VenueForm) -> VenueRow:
    return VenueRow(
        name=form.name.data or "",
        unit=form.unit.data or "",
        type=form.type.data or "",
        lon=float(form.lon.data or 0),
        lat=float(form.lat.data or 0),
        crs=form.crs.data or "wgs84",
        address=form.address.data or "",
        capacity_units=int(form.capacity_units.data or 1),
        max_headcount=form.max_headcount.data,
        facilities=form.facilities.data or "",
        phone=form.phone.data or "",
        hours=form.hours_text(),
        slot_minutes=int(form.slot_minutes.data or 60),
        min_duration_minutes=int(form.min_duration_minutes.data or 0),
        max_duration_minutes=int(form.max_duration_minutes.data or 0),
        max_days_ahead=int(form.max_days_ahead.data or 0),
        min_notice_minutes=int(form.min_notice_minutes.data or 0),
        requires_approval=bool(form.requires_approval.data),
        bookable_by=form.bookable_by.data or "members",
        weekly_quota_hours=form.weekly_quota_hours.data,
        published=bool(form.published.data),
        hold_hours=int(form.hold_hours.data or 0),
        cancel_cutoff_minutes=int(form.cancel_cutoff_minutes.data or 0),
    )


def _attach(form: VenueForm, exc: ValidationFailed) -> None:
    for name, message in exc.fields.items():
        target = "lon" if name in ("lon", "lat") else name
        if target == "hours":  # about the whole week: shown above the seven days
            form.week_errors.append(message)
            continue
        field = getattr(form, target, None)
        if field is not None:
            field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]
        else:
            flash(message, "danger")


def _warn_if_no_hours(venue: Venue) -> None:
    """Saved without opening hours (only an unpublished venue can be): say what it means."""
    if not venue.hours:
        flash(
            _(
                "'%(name)s' has no opening hours, so it cannot be booked. Add them before"
                " you publish it.",
                name=venue.name,
            ),
            "warning",
        )


def _edit_page(form: VenueForm, committee: Committee, venue: Venue | None) -> Any:
    return render_template(
        "venues/form.html", form=form, venue=venue, map_parts=_picker(form, committee, venue)
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    committee = _committee()
    actor = current_actor()
    assert actor is not None
    form = VenueForm()
    _fill_choices(form, committee)
    if not form.unit.choices:
        abort(403)
    if request.method == "GET":
        form.prefill_hours()
        for key, value in venue_defaults(committee).items():
            getattr(form, key).data = value
    if form.validate_on_submit():
        try:
            venue = ops.save_venue(
                get_db(),
                actor,
                committee,
                _row(form),
                paired_unit_ids=form.paired_units.data,
                checks_in=bool(form.checks_in.data),
            )
        except ValidationFailed as exc:
            _attach(form, exc)
            return _edit_page(form, committee, None), 422
        flash(_("Venue '%(name)s' registered.", name=venue.name), "success")
        _warn_if_no_hours(venue)
        return redirect(url_for("venues.detail", venue_id=venue.id))
    if request.method == "POST":
        return _edit_page(form, committee, None), 422
    return _edit_page(form, committee, None)


@bp.route("/<int:venue_id>/edit", methods=["GET", "POST"])
@login_required
def edit(venue_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    venue = policy.get_venue(get_db(), actor, venue_id, edit=True)
    committee = venue.committee
    form = VenueForm(obj=venue if request.method == "GET" else None)
    _fill_choices(form, committee)
    if request.method == "GET":
        row = ops.row_of(venue)
        form.unit.data = venue.unit.name
        form.lon.data, form.lat.data, form.crs.data = row.lon, row.lat, row.crs
        for d in range(7):
            getattr(form, f"hours_{d}").data = day_text(venue.opening_ranges, d)
        form.paired_units.data = [u.id for u in venue.paired_units]
    if form.validate_on_submit():
        try:
            ops.save_venue(
                get_db(),
                actor,
                committee,
                _row(form),
                venue,
                paired_unit_ids=form.paired_units.data,
                checks_in=bool(form.checks_in.data),
            )
        except ValidationFailed as exc:
            _attach(form, exc)
            return _edit_page(form, committee, venue), 422
        flash(_("Changes saved."), "success")
        _warn_if_no_hours(venue)
        return redirect(url_for("venues.detail", venue_id=venue.id))
    if request.method == "POST":
        return _edit_page(form, committee, venue), 422
    return _edit_page(form, committee, venue)


@bp.route("/<int:venue_id>")
def detail(venue_id: int) -> Any:
    actor = current_actor()
    db = get_db()
    venue = policy.get_venue(db, actor, venue_id)
    can_edit = bool(
        db.scalar(select(Venue.id).where(Venue.id == venue.id, policy.venues_edited_by(actor)))
    )
    tz = ZoneInfo(venue.committee.timezone)
    today = datetime.now(tz).date()
    prefill = booking_prefill(request.args, today)
    return render_template(
        "venues/detail.html",
        week=opening_week(
            venue.opening_ranges,
            [(c.start_at, c.end_at) for c in venue.closures],
            today,
            tz,
        ),
        venue=venue,
        can_edit=can_edit,
        tz=tz,
        days=[(d, day_text(venue.opening_ranges, d)) for d in range(7)],
        closure_form=ClosureForm(),
        button_form=EmptyForm(),
        map_parts=map_parts(
            venue_map(
                areas=map_ops.load_areas(db, venue.committee),
                point=(venue.lon, venue.lat),
                tiles=configured_tiles(),
                labels=map_labels(),
            )
        ),
        panel=booking_panel(venue, form=booking_form(venue, actor, prefill)),
        prefill=prefill,
        foreign=actor is not None and actor.committee_id != venue.committee_id,
    )


@bp.route("/<int:venue_id>/retire", methods=["POST"])
@login_required
def retire(venue_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    retired = request.form.get("retired", "1") == "1"
    venue = ops.set_retired(get_db(), actor, venue_id, retired)
    flash(_("Venue retired.") if retired else _("Venue reinstated."), "success")
    return redirect(url_for("venues.detail", venue_id=venue.id))


def hourless_venue_ids() -> set[int]:
    """The venues the current user manages that have no opening hours (none can be booked):
    the venue list marks them for their managers. Usually none, so one small query."""
    actor = current_actor()
    if actor is None or not (actor.is_admin or actor.is_secretary):
        return set()
    no_hours = ~select(OpeningHours.id).where(OpeningHours.venue_id == Venue.id).exists()
    stmt = select(Venue.id).where(policy.venues_edited_by(actor), no_hours)
    return set(get_db().scalars(stmt))


def _closure_page(
    form: ClosureForm,
    venue: Venue,
    hits: list[Booking] | None = None,
    *,
    changed: bool = False,
) -> str:
    """The closure form on a page of its own: with what was entered and each field's fault,
    or with the bookings the closure would cover, for the owner to cancel or to change the
    dates."""
    tz = ZoneInfo(venue.committee.timezone)
    return render_template(
        "venues/closure.html",
        form=form,
        venue=venue,
        hits=hits or [],
        changed=changed,
        tz=tz,
        start_text=form.start_at.data.strftime("%Y-%m-%dT%H:%M") if form.start_at.data else "",
        end_text=form.end_at.data.strftime("%Y-%m-%dT%H:%M") if form.end_at.data else "",
    )


def _confirmed_ids(raw: str | None) -> list[int] | None:
    """The bookings the owner saw and agreed to cancel (``cancel_ids``: "12,15"), or None
    when the owner has not been asked yet."""
    if raw is None:
        return None
    return [i for i in map(as_id, raw.split(",")) if i is not None]


@bp.route("/<int:venue_id>/closures", methods=["POST"])
@login_required
def add_closure(venue_id: int) -> Any:
    """Add a closure. Bad input shows the form again with its faults; a closure over
    active bookings first lists them and asks; confirmed, cancels them and closes, in this
    request's one transaction."""
    actor = current_actor()
    assert actor is not None
    db = get_db()
    venue = policy.get_venue(db, actor, venue_id, edit=True)
    form = ClosureForm()
    if not form.validate_on_submit() or form.start_at.data is None or form.end_at.data is None:
        return _closure_page(form, venue), 422
    tz = ZoneInfo(venue.committee.timezone)
    start = form.start_at.data.replace(tzinfo=tz)
    end = form.end_at.data.replace(tzinfo=tz)
    try:
        _closure, cancelled = ops.add_closure(
            db,
            actor,
            venue.id,
            start,
            end,
            form.reason.data or "",
            cancel_bookings=_confirmed_ids(request.form.get("cancel_ids")),
        )
    except ValidationFailed as exc:
        for name, message in exc.fields.items():
            field = getattr(form, name, None)
            if field is not None:
                field.errors = [*field.errors, message]
        return _closure_page(form, venue), 422
    except ClosureOverBookings as exc:
        # Nothing written: the list, to confirm (or, if it changed since, to confirm again).
        return _closure_page(form, venue, exc.bookings, changed=exc.changed), (
            409 if exc.changed else 200
        )
    flash(_("Closure added."), "success")
    if cancelled:
        flash(
            _(
                "Bookings inside it cancelled: %(n)s. Their groups have been notified.",
                n=len(cancelled),
            ),
            "success",
        )
    return redirect(url_for("venues.detail", venue_id=venue.id))


@bp.route("/<int:venue_id>/closures/<int:closure_id>/delete", methods=["POST"])
@login_required
def delete_closure(venue_id: int, closure_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    if not EmptyForm().validate_on_submit():
        abort(400)
    ops.delete_closure(get_db(), actor, venue_id, closure_id)
    flash(_("Closure removed."), "success")
    return redirect(url_for("venues.detail", venue_id=venue_id))


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
}


@bp.route("/export.<fmt>")
def export(fmt: str) -> Any:
    """The filtered venues as CSV, XLSX or GeoJSON. CSV and GeoJSON are streamed: the
    venues' ids are chosen now, their rows loaded and sent a thousand at a time by a session
    of the body's own."""
    if fmt not in EXPORT_TYPES:
        abort(404)
    stmt = _filtered_select(request.args, committee_asked(current_actor()))
    crs = "wgs84" if fmt == "geojson" else None
    stamp = datetime.now().strftime("%Y%m%d")
    filename = f"venues-{stamp}.{fmt}"
    if fmt not in STREAMED:
        rows = [ops.row_of(v, crs) for v in get_db().scalars(stmt)]
        return download([write_venues(rows, fmt)], EXPORT_TYPES[fmt], filename, cache="private")
    ids = list(get_db().scalars(stmt.with_only_columns(Venue.id)))
    body, session = with_read_session(lambda s: venue_chunks(ops.row_batches(s, ids, crs), fmt))
    return download(body, EXPORT_TYPES[fmt], filename, cache="private", on_close=[session.close])
