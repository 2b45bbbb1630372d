"""Activity pages (issue 20): the list (month, kind, open for sign-up), an activity with
sign-up and withdrawal, creating and editing (a unit secretary for its unit, the admin),
cancelling, the sign-up list's export and attendance (the lead unit)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from mapservice import policy
from mapservice.core.errors import BookingConflict, RuleViolation, ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import ActivityKind, ActivityStatus, SignUpState
from mapservice.models import Activity, Group, Unit, User, Venue
from mapservice.operations import activities as ops
from mapservice.operations import plans as plan_ops
from mapservice.operations import signups
from mapservice.operations.booking_form import local_window, parse_local
from mapservice.policy.activities import can_manage_activity, get_activity
from mapservice.stats import export
from mapservice.web.activity_forms import ActivityForm, CancelActivityForm, SignUpForm
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db, resolve_after_rollback
from mapservice.web.forms import EmptyForm

bp = Blueprint("activities", __name__, url_prefix="/activities")

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
#: An operation's field → the form's field that shows its message.
FIELD_OF = {"signup_deadline": "deadline_date", "site": "site_lon", "group_id": "group"}
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _int(text: str | None) -> int | None:
    """A posted id: digits only (anything else is no id, refused by the operation)."""
    return int(text) if text and text.isdigit() and len(text) < 10 else None


def _actor() -> User:
    actor = current_actor()
    assert actor is not None  # every route is login_required
    return actor


def _tz(actor: User) -> ZoneInfo:
    return signups.committee_tz(get_db(), actor.committee_id)


def _attach(form: Any, fields: dict[str, str]) -> None:
    """An operation's field messages onto the form's fields that show them."""
    for name, message in fields.items():
        found = getattr(form, FIELD_OF.get(name, name), None)
        if found is not None:
            found.errors = [message]


@bp.route("/")
@login_required
def index() -> Any:
    actor = _actor()
    month = request.args.get("month", "")
    kind = request.args.get("kind", "")
    found = ops.list_activities(
        get_db(),
        actor,
        month=month if MONTH.match(month) else "",
        kind=kind if kind in {k.value for k in ActivityKind} else "",
        open_only=request.args.get("open") == "1",
    )
    return render_template(
        "activities/list.html",
        activities=found,
        counted=signups.counts(get_db(), [a.id for a in found]),
        tz=_tz(actor),
        kinds=ActivityKind.choices(lang()),
        shown_status=signups.shown_status,
        ActivityStatus=ActivityStatus,
        ActivityKind=ActivityKind,
        may_create=actor.is_admin or actor.is_secretary,
    )


# ------------------------------------------------------------------ one activity


def signer_choices(actor: User) -> list[tuple[str, str]]:
    """Who ``actor`` may sign up: a booker its group; a secretary its unit itself or one of
    the unit's groups; the admin any active group of the committee."""
    groups = get_db().scalars(
        select(Group)
        .where(policy.groups_acted_for_by(actor), Group.active.is_(True))
        .order_by(Group.name)
    )
    pairs = [(str(g.id), g.name) for g in groups]
    if actor.is_secretary and actor.unit is not None:
        pairs.insert(0, ("", _("Our unit: %(unit)s", unit=actor.unit.name)))
    return pairs


def _detail(
    activity_id: int,
    status: int = 200,
    form: SignUpForm | None = None,
    error: str = "",
) -> Any:
    actor = _actor()
    db = get_db()
    a = get_activity(db, actor, activity_id)
    manage = can_manage_activity(actor, a)
    rows = signups.signups_of(db, a.id)
    form = form or SignUpForm()
    form.group.choices = signer_choices(actor)
    return render_template(
        "activities/detail.html",
        a=a,
        counted=signups.counts(db, [a.id])[a.id],
        shown=signups.shown_status(a),
        manage=manage,
        rows=rows if manage else [],
        mine=[s for s in rows if s.state != "withdrawn" and signups.acts_for_signup(actor, s, a)],
        form=form,
        button_form=EmptyForm(),
        cancel_form=CancelActivityForm(),
        tz=_tz(actor),
        now=datetime.now(ZoneInfo("UTC")),
        error=error,
        ActivityStatus=ActivityStatus,
        ActivityKind=ActivityKind,
        SignUpState=SignUpState,
        place=signups.place_name(a),
    ), status


@bp.route("/<int:activity_id>")
@login_required
def detail(activity_id: int) -> Any:
    return _detail(activity_id)


@bp.route("/<int:activity_id>/signup", methods=["POST"])
@login_required
def sign_up(activity_id: int) -> Any:
    actor = _actor()
    form = SignUpForm()
    form.group.choices = signer_choices(actor)
    if not form.validate_on_submit():
        return _detail(activity_id, 422, form)
    try:
        made = signups.sign_up(
            get_db(),
            actor,
            activity_id,
            form.headcount.data or 0,
            group_id=_int(form.group.data),
            note=form.note.data or "",
        )
    except (ValidationFailed, RuleViolation) as exc:
        get_db().rollback()
        _attach(form, exc.fields)
        return _detail(activity_id, 422, form, exc.message)
    if made.state == "confirmed":
        flash(_("Signed up: %(n)s people confirmed.", n=made.headcount), "success")
    else:
        flash(
            _("The activity is full: you are on the waitlist, promoted first come, first served."),
            "warning",
        )
    return redirect(url_for("activities.detail", activity_id=activity_id), 303)


@bp.route("/<int:activity_id>/signups/<int:signup_id>/withdraw", methods=["POST"])
@login_required
def withdraw(activity_id: int, signup_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        signups.withdraw(get_db(), _actor(), activity_id, signup_id)
    except RuleViolation as exc:
        get_db().rollback()
        return _detail(activity_id, 422, error=exc.message)
    flash(_("Sign-up withdrawn."), "success")
    return redirect(url_for("activities.detail", activity_id=activity_id), 303)


@bp.route("/<int:activity_id>/cancel", methods=["POST"])
@login_required
def cancel(activity_id: int) -> Any:
    form = CancelActivityForm()
    if not form.validate_on_submit():
        return _detail(activity_id, 422, error=_("Say why it is cancelled."))
    ops.cancel_activity(get_db(), _actor(), activity_id, form.reason.data or "")
    flash(_("Activity cancelled; the signed-up groups are told."), "success")
    return redirect(url_for("activities.detail", activity_id=activity_id), 303)


@bp.route("/<int:activity_id>/attendance", methods=["POST"])
@login_required
def attendance(activity_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    counts: dict[int, int | None] = {}
    for key, value in request.form.items():
        if key.startswith("attended-") and key[9:].isdigit():
            text = value.strip()
            if text and not text.isdigit():
                return _detail(activity_id, 422, error=_("Give the number of people who came."))
            counts[int(key[9:])] = int(text) if text else None
    try:
        signups.record_attendance(get_db(), _actor(), activity_id, counts)
    except (ValidationFailed, RuleViolation) as exc:
        get_db().rollback()
        return _detail(activity_id, 422, error=exc.message)
    flash(_("Attendance saved."), "success")
    return redirect(url_for("activities.detail", activity_id=activity_id), 303)


@bp.route("/<int:activity_id>/signups.<fmt>")
@login_required
def export_signups(activity_id: int, fmt: str) -> Any:
    if fmt not in EXPORT_TYPES:
        abort(404)
    a = get_activity(get_db(), _actor(), activity_id, manage=True)
    data = export.write_table(signups.signup_table(get_db(), a), fmt)
    response = Response(data, mimetype=EXPORT_TYPES[fmt])
    filename = f"{a.title}-{a.start_at:%Y%m%d}.{fmt}"
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return response


# ------------------------------------------------------------------ create and edit


def _choices(form: ActivityForm, actor: User, a: Activity | None) -> None:
    db = get_db()
    form.kind.choices = ActivityKind.choices(lang())
    units = db.scalars(
        select(Unit)
        .where(policy.units_managed_by(actor), Unit.status == "active")
        .order_by(Unit.name)
    )
    form.lead_unit_id.choices = [(str(u.id), u.name) for u in units]
    venues = db.scalars(
        select(Venue)
        .join(Unit, Unit.id == Venue.unit_id)
        .where(policy.venues_seen_by(actor), policy.venues_bookable_by(actor))
        .order_by(Venue.name)
    )
    form.venue_id.choices = [("", "—")] + [(str(v.id), f"{v.name} · {v.unit.name}") for v in venues]
    now = a.status if a is not None else ActivityStatus.DRAFT.value
    form.status.choices = [(s, ActivityStatus(s).label(lang())) for s in ops.next_statuses(now)]


def _local(form: ActivityForm, tz: ZoneInfo) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's local date and times as instants, or the fields' problems."""
    assert isinstance(form.date.data, date)
    window, errors = local_window(form.date.data, form.start.data or "", form.end.data or "", tz)
    values: dict[str, Any] = {}
    if window is not None:
        values["start"], values["end"] = window
    if form.deadline_date.data:
        deadline = parse_local(form.deadline_date.data, form.deadline_time.data or "23:59", tz)
        if deadline is None:
            errors["deadline_date"] = _("That time does not exist on that date.")
        values["signup_deadline"] = deadline
    return values, errors


def _form_page(
    form: ActivityForm,
    a: Activity | None,
    status: int = 200,
    error: str = "",
    alternatives: Any = None,
    tz: ZoneInfo | None = None,
) -> Any:
    return render_template(
        "activities/form.html", form=form, a=a, error=error, alternatives=alternatives, tz=tz
    ), status


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:activity_id>/edit", methods=["GET", "POST"])
@login_required
def edit(activity_id: int | None = None) -> Any:
    actor = _actor()
    if not (actor.is_admin or actor.is_secretary):
        abort(403)
    db = get_db()
    a = get_activity(db, actor, activity_id, manage=True) if activity_id else None
    tz = _tz(actor)
    form = ActivityForm()
    _choices(form, actor, a)
    if request.method == "GET":
        _fill(form, a, actor, tz)
        if a is None and _int(request.args.get("plan_entry")):
            _from_turn(form, actor, tz)
        return _form_page(form, a, tz=tz)
    if not form.validate_on_submit():
        return _form_page(form, a, 422, tz=tz)
    values, errors = _local(form, tz)
    if errors:
        _attach(form, errors)
        return _form_page(form, a, 422, tz=tz)
    try:
        saved = _save(form, actor, a, values)
    except (ValidationFailed, RuleViolation) as exc:
        db.rollback()
        _attach(form, exc.fields)
        return _form_page(form, a, 422, exc.message, tz=tz)
    except BookingConflict as exc:
        resolve_after_rollback(exc)
        return _form_page(form, a, 409, exc.message, exc.alternatives, tz=tz)
    flash(_("Activity '%(title)s' saved.", title=saved.title), "success")
    return redirect(url_for("activities.detail", activity_id=saved.id), 303)


def _fill(form: ActivityForm, a: Activity | None, actor: User, tz: ZoneInfo) -> None:
    if a is None:
        form.lead_unit_id.data = str(actor.unit_id or "")
        form.capacity.data = form.capacity.data or 30
        return
    start, end, deadline = (t.astimezone(tz) for t in (a.start_at, a.end_at, a.signup_deadline))
    form.title.data, form.kind.data, form.description.data = a.title, a.kind, a.description
    form.lead_unit_id.data = str(a.lead_unit_id)
    form.date.data, form.start.data, form.end.data = start.date(), f"{start:%H:%M}", f"{end:%H:%M}"
    form.capacity.data = a.capacity
    form.deadline_date.data, form.deadline_time.data = deadline.date(), f"{deadline:%H:%M}"
    form.place.data = "venue" if a.venue_id else "site"
    form.venue_id.data = str(a.venue_id or "")
    form.site_lon.data, form.site_lat.data = a.site_lon, a.site_lat
    form.site_area.data, form.site_name.data = a.site_area or "", a.site_name
    form.site_street.data, form.status.data = a.site_street, a.status


def _from_turn(form: ActivityForm, actor: User, tz: ZoneInfo) -> None:
    """The form prefilled from a turn of the plan (``?plan_entry=ID``, from the plan page)."""
    entry = plan_ops.turn_to_lead(get_db(), actor, _int(request.args.get("plan_entry")) or 0)
    found = plan_ops.turn_defaults(entry, datetime.now(tz).date())
    form.plan_entry.data = str(entry.id)
    form.title.data, form.kind.data = found["title"], found["kind"]
    form.lead_unit_id.data, form.date.data = str(found["lead_unit_id"]), found["date"]


def _save(form: ActivityForm, actor: User, a: Activity | None, values: dict[str, Any]) -> Activity:
    own = {
        "title": form.title.data or "",
        "kind": form.kind.data or "",
        "capacity": form.capacity.data or 0,
        "description": form.description.data or "",
        **values,
    }
    site = {
        "site_lon": form.site_lon.data,
        "site_lat": form.site_lat.data,
        "site_area": form.site_area.data or None,
        "site_name": form.site_name.data or "",
        "site_street": form.site_street.data or "",
    }
    if a is not None:
        changes = {**own, "status": form.status.data or a.status}
        if a.venue_id is None:
            changes.update(site)
        return ops.update_activity(get_db(), actor, a.id, changes)
    at_venue = form.place.data == "venue"
    if at_venue and not form.venue_id.data:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"venue_id": _("Choose a venue.")}
        )
    return ops.create_activity(
        get_db(),
        actor,
        **own,
        lead_unit_id=_int(form.lead_unit_id.data),
        venue_id=_int(form.venue_id.data) if at_venue else None,
        publish=bool(form.publish.data),
        plan_entry_id=_int(form.plan_entry.data),
        **({} if at_venue else site),
    )
