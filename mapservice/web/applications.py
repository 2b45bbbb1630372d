"""Units' applications to join (成员准入): the public page ``/apply`` and the committee admin's
list where each is admitted (showing the new secretary's set-password link) or declined."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from mapservice import policy
from mapservice.core.errors import DomainError, TooMany, ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import ApplicationStatus, UnitKind
from mapservice.maps import map_labels, picker_map
from mapservice.models import Committee, User
from mapservice.operations import applications as ops
from mapservice.operations import mapview as map_ops
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import PHONE, attach_errors, form_values, options
from mapservice.web.maps import configured_tiles, map_parts
from mapservice.web.mapview import committee_asked
from mapservice.web.users import show_link

bp = Blueprint("applications", __name__)
L = ops.LIMITS


class ApplyForm(FlaskForm):
    name = StringField(_l("Name of the organisation"), [DataRequired(), Length(max=L["name"])])
    kind = SelectField(_l("Kind"), [DataRequired()])
    address = StringField(_l("Address"), [DataRequired(), Length(max=L["address"])])
    lon = StringField(
        _l("Longitude"), [DataRequired(_l("Pick the location on the map.")), Length(max=40)]
    )
    lat = StringField(
        _l("Latitude"), [DataRequired(_l("Pick the location on the map.")), Length(max=40)]
    )
    crs = HiddenField(default="wgs84", validators=[Length(max=20)])
    contact_name = StringField(
        _l("Contact person"), [DataRequired(), Length(max=L["contact_name"])]
    )
    phone = StringField(_l("Phone"), [DataRequired(), Length(max=L["phone"]), PHONE])
    email = StringField(_l("E-mail"), [Optional(), Length(max=L["email"])])
    venues_plan = TextAreaField(
        _l("Venues you mean to open"), [Optional(), Length(max=L["venues_plan"])]
    )
    # The honeypot: hidden from people (CSS, tab order, autocomplete off); bots fill it.
    website = StringField(_l("Website"), [Optional()])


class AdmitForm(FlaskForm):
    username = StringField(_l("User name"), [DataRequired(), Length(max=L["username"])])


class DeclineForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), [DataRequired(), Length(max=L["reason"])])


def _apply_form(**kw: Any) -> ApplyForm:
    form = ApplyForm(**kw)
    form.kind.choices = options(UnitKind.choices(lang()))
    return form


def _apply_page(form: ApplyForm, status: int, problem: str = "") -> Any:
    committee = committee_asked(current_actor())
    point: tuple[float, float] | None = None
    if (form.crs.data or "wgs84") == "wgs84":
        try:
            point = (float(form.lon.data or ""), float(form.lat.data or ""))
        except ValueError:
            point = None
    m = picker_map(
        areas=map_ops.load_areas(get_db(), committee),
        tiles=configured_tiles(),
        point=point,
        lang=lang(),
        labels=map_labels(),
    )
    return render_template(
        "units/apply.html",
        form=form,
        committee_name=shown_name(committee),
        map_parts=map_parts(m),
        problem=problem,
    ), status


@bp.route("/apply", methods=["GET", "POST"])
def apply() -> Any:
    """The public application form (any committee by ``?committee=SLUG``, else the first)."""
    form = _apply_form()
    trap = (form.website.data or "") if request.method == "POST" else ""
    if not trap and not form.validate_on_submit():  # a filled trap is refused before all
        return _apply_page(form, 422 if request.method == "POST" else 200)
    committee = committee_asked(current_actor())
    db = get_db()
    try:
        application = ops.submit_application(
            db,
            committee,
            **form_values(
                form,
                "name",
                "kind",
                "address",
                "lon",
                "lat",
                "crs",
                "contact_name",
                "phone",
                "email",
                "venues_plan",
            ),
            trap=trap,
            client_address=request.remote_addr or "-",
            now=datetime.now(UTC),
        )
    except ValidationFailed as exc:
        attach_errors(form, exc)
        return _apply_page(form, 422)
    except TooMany as exc:
        return _apply_page(form, exc.status, exc.message)
    except DomainError as exc:  # the honeypot: a generic answer, the form emptied
        return _apply_page(_apply_form(formdata=None), 400, exc.message)
    db.commit()
    return render_template(
        "units/applied.html", application=application, committee_name=shown_name(committee)
    )


def shown_name(committee: Committee) -> str:
    """The committee's name in the page's language (its English name, when it has one)."""
    return committee.name_en if lang() == "en" and committee.name_en else committee.name


def _list_page(status: int = 200, failed: tuple[int, FlaskForm] | None = None) -> Any:
    """The admin's list; ``failed``: the application whose admit or decline form is shown
    again with its errors."""
    rows = ops.list_applications(get_db(), current_actor())
    forms: dict[int, dict[str, FlaskForm]] = {
        a.id: {
            "admit": AdmitForm(formdata=None, username=ops.suggested_username(get_db(), a)),
            "decline": DeclineForm(formdata=None),
        }
        for a in rows
        if a.status == ApplicationStatus.PENDING.value
    }
    if failed is not None and failed[0] in forms:
        key = "admit" if isinstance(failed[1], AdmitForm) else "decline"
        forms[failed[0]][key] = failed[1]
    for application_id, pair in forms.items():  # one page, many forms: ids of their own
        for form in pair.values():
            for field in form:
                field.id = field.label.field_id = f"{field.name}-{application_id}"
    actor = current_actor()
    committee = get_db().get(Committee, actor.committee_id) if actor else None
    tz = ZoneInfo(committee.timezone if committee else "UTC")
    return render_template("units/applications.html", rows=rows, forms=forms, tz=tz), status


@bp.route("/units/applications")
@login_required
def index() -> Any:
    return _list_page()


def _decide(application_id: int, form: FlaskForm, act: Callable[[User], Any]) -> Any:
    """Admit or decline: ``act(actor)`` on a valid form (a refusal put back on the form);
    else the list again with the form and its errors (422)."""
    actor = policy.require_committee_admin(current_actor())
    if form.validate_on_submit():
        try:
            return act(actor)
        except ValidationFailed as exc:
            get_db().rollback()
            attach_errors(form, exc)
            form.form_errors.append(exc.message)
    policy.get_application(get_db(), actor, application_id)  # another committee's: 404
    return _list_page(422, (application_id, form))


@bp.route("/units/applications/<int:application_id>/admit", methods=["POST"])
@login_required
def admit(application_id: int) -> Any:
    form = AdmitForm()

    def act(actor: User) -> Any:
        username = form.username.data or ""
        _application, user, secret = ops.admit(
            get_db(), actor, application_id, username=username, now=datetime.now(UTC)
        )
        flash(_("'%(name)s' is admitted.", name=user.unit.name if user.unit else ""), "success")
        return show_link(user, secret)

    return _decide(application_id, form, act)


@bp.route("/units/applications/<int:application_id>/decline", methods=["POST"])
@login_required
def decline(application_id: int) -> Any:
    form = DeclineForm()

    def act(actor: User) -> Any:
        reason = form.reason.data or ""
        application = ops.decline(
            get_db(), actor, application_id, reason=reason, now=datetime.now(UTC)
        )
        flash(_("The application of '%(name)s' is declined.", name=application.name), "info")
        return redirect(url_for("applications.index"))

    return _decide(application_id, form, act)
