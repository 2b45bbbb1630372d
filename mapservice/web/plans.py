"""The activity list (活动清单) with its rotation, and pairings (结对挂钩): thin pages over
``operations/plans.py``, ``operations/pairings.py`` and ``operations/plan_files.py``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, NumberRange, Optional

from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.ids import MAX_ID
from mapservice.core.vocab import UnitStatus
from mapservice.models import Area, Unit, User
from mapservice.operations import pairings as pair_ops
from mapservice.operations import plan_files
from mapservice.operations import plans as ops
from mapservice.policy.committees import require_committee_admin
from mapservice.policy.plans import get_plan, require_plan_viewer
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import EmptyForm, _sane_date

bp = Blueprint("plans", __name__)


class NewPlanForm(FlaskForm):
    year = IntegerField(_l("Year"), validators=[DataRequired(), NumberRange(2000, 2100)])
    period = SelectField(_l("Turns by"), choices=[], default="month")
    title = StringField(_l("Title"), validators=[Optional()])


class EntryForm(FlaskForm):
    period = IntegerField(_l("Period"), validators=[DataRequired(), NumberRange(1, 53)])
    unit_id = SelectField(_l("Lead unit"), coerce=int, choices=[])
    kind = SelectField(_l("Kind"), choices=[])
    title = StringField(_l("Title"), validators=[Optional()])
    note = StringField(_l("Note"), validators=[Optional()])


class SwapForm(FlaskForm):
    first = IntegerField(validators=[DataRequired(), NumberRange(1, MAX_ID)])
    second = IntegerField(validators=[DataRequired(), NumberRange(1, MAX_ID)])


class LedForm(FlaskForm):
    led_on = DateField(_l("Led on"), validators=[Optional(), _sane_date])


class PreferencesForm(FlaskForm):
    preferred_months = StringField(_l("Preferred months"), validators=[Optional()])
    blackout_months = StringField(_l("Blackout months"), validators=[Optional()])
    preferred_kinds = SelectMultipleField(_l("Preferred kinds"), choices=[])


class PairingForm(FlaskForm):
    unit_id = SelectField(_l("Unit"), coerce=int, choices=[])
    partner = SelectField(_l("Paired with"), choices=[])
    start_on = DateField(_l("From"), validators=[DataRequired(), _sane_date])
    end_on = DateField(_l("Until"), validators=[Optional(), _sane_date])
    note = StringField(_l("Note"), validators=[Optional()])


class EndForm(FlaskForm):
    end_on = DateField(_l("Until"), validators=[DataRequired(), _sane_date])


def _viewer() -> User:
    return require_plan_viewer(current_actor())


def _today(actor: User) -> Any:
    from mapservice.models import Committee

    return ops.committee_today(get_db().get(Committee, actor.committee_id))  # type: ignore[arg-type]


def _active_units(actor: User) -> list[tuple[int, str]]:
    units = get_db().scalars(
        select(Unit)
        .where(Unit.committee_id == actor.committee_id, Unit.status == UnitStatus.ACTIVE.value)
        .order_by(Unit.name)
    )
    return [(u.id, u.name) for u in units]


def _first_error(form: FlaskForm) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return _("The request was not understood.")


@bp.route("/plans/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    actor = _viewer()
    form = NewPlanForm()
    form.period.choices = [("month", _("Months")), ("week", _("Weeks"))]
    status = 200
    if request.method == "POST":
        require_committee_admin(actor)
        if form.validate_on_submit():
            try:
                plan = ops.create_plan(
                    get_db(),
                    actor,
                    year=form.year.data or 0,
                    period=form.period.data or "month",
                    title=form.title.data or "",
                )
            except ValidationFailed as exc:
                form.year.errors = [exc.message]
            else:
                flash(
                    _("Plan for %(year)s drafted: edit it, then publish.", year=plan.year),
                    "success",
                )
                return redirect(url_for("plans.show", plan_id=plan.id))
        status = 422
    plans = ops.list_plans(get_db(), actor)
    return render_template("plans/index.html", plans=plans, form=form), status


def _plan_page(plan_id: int, status: int = 200, error: str = "") -> Any:
    actor = _viewer()
    db = get_db()
    view = ops.plan_view(db, actor, plan_id, _today(actor))
    if error:
        flash(error, "danger")
    units = _active_units(actor) if actor.is_admin else []
    return render_template(
        "plans/show.html",
        view=view,
        units=units,
        kinds=ops.kind_choices(lang()),
        kind_label=lambda k: ops.kind_label(k, lang()),
        period_label=plan_files.period_label,
        mine=view.of_unit(actor.unit_id),
        button_form=EmptyForm(),
    ), status


@bp.route("/plans/<int:plan_id>")
@login_required
def show(plan_id: int) -> Any:
    return _plan_page(plan_id)


@bp.route("/plans/<int:plan_id>/entries/<int:entry_id>", methods=["POST"])
@login_required
def edit_entry(plan_id: int, entry_id: int) -> Any:
    actor = _viewer()
    get_plan(get_db(), actor, plan_id, edit=True)  # 404 / 403 before the form is read
    form = EntryForm()
    form.unit_id.choices = _active_units(actor)
    form.kind.choices = ops.kind_choices(lang())
    if not form.validate_on_submit():
        return _plan_page(plan_id, 422, _first_error(form))
    try:
        ops.update_entry(
            get_db(),
            actor,
            plan_id,
            entry_id,
            period=form.period.data or 0,
            unit_id=form.unit_id.data,
            kind=form.kind.data or "",
            title=form.title.data or "",
            note=form.note.data or "",
        )
    except ValidationFailed as exc:
        return _plan_page(plan_id, 422, exc.message)
    flash(_("Turn saved."), "success")
    return redirect(url_for("plans.show", plan_id=plan_id) + f"#entry-{entry_id}")


@bp.route("/plans/<int:plan_id>/swap", methods=["POST"])
@login_required
def swap(plan_id: int) -> Any:
    actor = _viewer()
    get_plan(get_db(), actor, plan_id, edit=True)
    form = SwapForm()
    if not form.validate_on_submit():
        return _plan_page(plan_id, 422, _("Choose two turns to swap."))
    ops.swap_leads(get_db(), actor, plan_id, form.first.data or 0, form.second.data or 0)
    flash(_("Lead units swapped."), "success")
    return redirect(url_for("plans.show", plan_id=plan_id))


@bp.route("/plans/<int:plan_id>/publish", methods=["POST"])
@login_required
def publish(plan_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    ops.publish(get_db(), _viewer(), plan_id)
    flash(_("The plan is published."), "success")
    return redirect(url_for("plans.show", plan_id=plan_id))


@bp.route("/plans/<int:plan_id>/entries/<int:entry_id>/led", methods=["POST"])
@login_required
def mark_led(plan_id: int, entry_id: int) -> Any:
    get_plan(get_db(), _viewer(), plan_id)
    form = LedForm()
    if not form.validate_on_submit():
        return _plan_page(plan_id, 422, _first_error(form))
    ops.mark_led(get_db(), _viewer(), plan_id, entry_id, form.led_on.data)
    flash(_("Turn saved."), "success")
    return redirect(url_for("plans.show", plan_id=plan_id) + f"#entry-{entry_id}")


@bp.route("/plans/<int:plan_id>/plan.<fmt>")
@login_required
def export(plan_id: int, fmt: str) -> Any:
    actor = _viewer()
    view = ops.plan_view(get_db(), actor, plan_id, _today(actor))
    if fmt == "xlsx":
        data = plan_files.plan_xlsx(view)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    elif fmt == "pdf":
        data = plan_files.plan_pdf(view)
        mimetype = "application/pdf"
    else:
        abort(404)
    name = f"activity-plan-{view.plan.year}.{fmt}"
    return Response(
        data, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={name}"}
    )


@bp.route("/plans/preferences", methods=["GET", "POST"])
@login_required
def preferences() -> Any:
    actor = _viewer()
    db = get_db()
    raw = request.values.get("unit", "")
    unit_id = int(raw) if actor.is_admin and raw.isdigit() else actor.unit_id
    if unit_id is None:
        units = _active_units(actor)
        if not units:
            abort(404)
        unit_id = units[0][0]
    unit = db.get(Unit, unit_id)
    if unit is None or unit.committee_id != actor.committee_id:
        abort(404)
    pref = ops.preferences_of(db, unit_id)
    form = PreferencesForm(obj=pref if request.method == "GET" else None)
    form.preferred_kinds.choices = ops.kind_choices(lang())
    if request.method == "GET":
        form.preferred_kinds.data = [k for k in pref.preferred_kinds.split(",") if k]
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                ops.save_preferences(
                    db,
                    actor,
                    unit_id,
                    preferred_months=form.preferred_months.data or "",
                    blackout_months=form.blackout_months.data or "",
                    preferred_kinds=list(form.preferred_kinds.data or []),
                )
            except ValidationFailed as exc:
                for name, message in exc.fields.items():
                    getattr(form, name).errors = [message]
            else:
                flash(_("Preferences of %(unit)s saved.", unit=unit.name), "success")
                return redirect(url_for("plans.preferences", unit=unit_id))
        status = 422
    units = _active_units(actor) if actor.is_admin else []
    return render_template("plans/preferences.html", form=form, unit=unit, units=units), status


def _partner_choices(actor: User) -> list[tuple[str, str]]:
    db = get_db()
    streets = db.scalars(
        select(Area)
        .where(Area.committee_id == actor.committee_id, Area.level == "street")
        .order_by(Area.name)
    )
    units = [(f"u{i}", n) for i, n in _active_units(actor)]
    return [*units, *((f"a{a.id}", _("%(street)s (street)", street=a.name)) for a in streets)]


@bp.route("/pairings/", methods=["GET", "POST"])
@login_required
def pairings() -> Any:
    actor = current_actor()
    if actor is None:
        abort(401)
    db = get_db()
    today = _today(actor)
    form = PairingForm()
    status = 200
    if request.method == "POST":
        require_committee_admin(actor)
        form.unit_id.choices = _active_units(actor)
        form.partner.choices = _partner_choices(actor)
        if form.validate_on_submit():
            partner = form.partner.data or ""
            pid = int(partner[1:]) if partner[1:].isdigit() else None
            try:
                pair_ops.create_pairing(
                    db,
                    actor,
                    unit_id=form.unit_id.data,
                    partner_unit_id=pid if partner.startswith("u") else None,
                    partner_area_id=pid if partner.startswith("a") else None,
                    start_on=form.start_on.data,  # type: ignore[arg-type]
                    end_on=form.end_on.data,
                    note=form.note.data or "",
                )
            except ValidationFailed as exc:
                flash(exc.message, "danger")
            else:
                flash(_("Pairing saved."), "success")
                return redirect(url_for("plans.pairings"))
        else:
            flash(_first_error(form), "danger")
        status = 422
    if actor.is_admin:
        form.unit_id.choices = _active_units(actor)
        form.partner.choices = _partner_choices(actor)
    rows = pair_ops.list_pairings(db, actor, today)
    return render_template(
        "plans/pairings.html",
        rows=rows,
        unpaired=pair_ops.unpaired(db, actor, today),
        form=form,
        end_form=EndForm(),
        today=today,
        kind_label=pair_ops.kind_label,
    ), status


@bp.route("/pairings/<int:pairing_id>/end", methods=["POST"])
@login_required
def end_pairing(pairing_id: int) -> Any:
    actor = current_actor()
    if actor is None:
        abort(401)
    form = EndForm()
    if not form.validate_on_submit():
        flash(_first_error(form), "danger")
        return redirect(url_for("plans.pairings"))
    try:
        pair_ops.end_pairing(get_db(), actor, pairing_id, form.end_on.data)  # type: ignore[arg-type]
    except ValidationFailed as exc:
        flash(exc.message, "danger")
        return redirect(url_for("plans.pairings"))
    flash(_("Pairing ended."), "success")
    return redirect(url_for("plans.pairings"))
