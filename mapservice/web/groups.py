"""Youth groups: the list (filtered), new, edit, suspend and reactivate; a group's upcoming
bookings, which the admin keeps or cancels (through the booking pages' cancel)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from mapservice import policy
from mapservice.core.i18n import _
from mapservice.core.ids import as_id
from mapservice.models import Group, Unit, User
from mapservice.operations import groups as ops
from mapservice.web.account_forms import GroupForm
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import EmptyForm, ReasonForm, form_values, submit_form

bp = Blueprint("groups", __name__, url_prefix="/groups")


def _manager() -> User:
    actor = current_actor()
    return policy.require_group_manager(actor)


def unit_choices(actor: User) -> list[tuple[str, str]]:
    """The units a group of ``actor``'s may belong to: a secretary's own; for the admin the
    committee's, after "none (a standalone group)"."""
    units = get_db().scalars(select(Unit).where(policy.units_managed_by(actor)).order_by(Unit.name))
    pairs = [(str(u.id), u.name) for u in units]
    return pairs if actor.is_secretary else [("", _("None (a standalone group)")), *pairs]


@bp.route("/")
@login_required
def index() -> Any:
    actor = _manager()
    raw_unit = request.args.get("unit", "")
    unit_id = as_id(raw_unit)
    groups = ops.list_groups(
        get_db(),
        actor,
        unit_id=unit_id,
        status=request.args.get("status", ""),
        text=request.args.get("q", "")[:60],
    )
    return render_template(
        "groups/list.html",
        groups=groups,
        units=unit_choices(actor)[0 if actor.is_secretary else 1 :],
        button_form=EmptyForm(),
    )


def _form_page(form: GroupForm, group: Group | None, status: int = 200) -> Any:
    upcoming = ops.upcoming_bookings(get_db(), group, datetime.now(UTC)) if group else []
    return render_template(
        "groups/form.html",
        form=form,
        group=group,
        upcoming=upcoming,
        cancel_form=ReasonForm(),
        tz=ZoneInfo(group.committee.timezone) if group else None,
    ), status


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:group_id>/edit", methods=["GET", "POST"])
@login_required
def edit(group_id: int | None = None) -> Any:
    actor = _manager()
    group = policy.get_group(get_db(), actor, group_id, edit=True) if group_id else None
    form = GroupForm(obj=group if request.method == "GET" else None)
    form.unit_id.choices = unit_choices(actor)
    if request.method == "GET" and group is not None:
        form.unit_id.data = str(group.unit_id or "")
    return submit_form(
        form,
        lambda: ops.save_group(
            get_db(),
            actor,
            **form_values(form, "name", "contact_name", "contact_phone", "contact_email"),
            unit_id=int(form.unit_id.data) if form.unit_id.data else None,
            group=group,
        ),
        lambda status: _form_page(form, group, status),
        lambda saved: _("Group '%(name)s' saved.", name=saved.name),
        url_for("groups.index"),
    )


@bp.route("/<int:group_id>/status", methods=["POST"])
@login_required
def set_status(group_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    actor = _manager()
    active = request.form.get("active") == "1"
    group = ops.set_group_active(get_db(), actor, group_id, active)
    if active:
        flash(_("Group '%(name)s' can book again.", name=group.name), "success")
        return redirect(url_for("groups.index"))
    flash(
        _(
            "Group '%(name)s' is suspended and cannot book. Its upcoming bookings are kept;"
            " cancel those that should not take place.",
            name=group.name,
        ),
        "warning",
    )
    return redirect(url_for("groups.edit", group_id=group.id))
