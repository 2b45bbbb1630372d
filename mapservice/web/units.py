"""Member units: the committee admin admits, suspends and edits them; others see the list."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import func, select

from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import UnitKind
from mapservice.models import Unit, Venue
from mapservice.operations import access
from mapservice.operations import units as ops
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import EmptyForm, UnitForm, options

bp = Blueprint("units", __name__, url_prefix="/units")


@bp.route("/")
@login_required
def index() -> Any:
    actor = current_actor()
    db = get_db()
    rows = db.execute(
        select(Unit, func.count(Venue.id))
        .outerjoin(Venue, (Venue.unit_id == Unit.id) & Venue.retired.is_(False))
        .where(access.units_visible(actor))
        .group_by(Unit.id)
        .order_by(Unit.status, Unit.name)
    ).all()
    return render_template("units/list.html", rows=rows, button_form=EmptyForm())


def _form_page(form: UnitForm, unit: Unit | None, status: int = 200) -> Any:
    return render_template("units/form.html", form=form, unit=unit), status


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:unit_id>/edit", methods=["GET", "POST"])
@login_required
def edit(unit_id: int | None = None) -> Any:
    actor = current_actor()
    access.require_admin(actor)
    assert actor is not None
    unit = access.get_unit(get_db(), actor, unit_id, edit=True) if unit_id else None
    form = UnitForm(obj=unit if request.method == "GET" else None)
    form.kind.choices = options(UnitKind.choices(lang()))
    if form.validate_on_submit():
        try:
            saved = ops.save_unit(
                get_db(),
                actor,
                name=form.name.data or "",
                kind=form.kind.data or "",
                secretary=form.secretary.data or "",
                phone=form.phone.data or "",
                name_en=form.name_en.data or "",
                unit=unit,
            )
        except ValidationFailed as exc:
            for name, message in exc.fields.items():
                getattr(form, name).errors = [message]
            return _form_page(form, unit, 422)
        flash(_("Unit '%(name)s' saved.", name=saved.name), "success")
        return redirect(url_for("units.index"))
    return _form_page(form, unit, 422 if request.method == "POST" else 200)


@bp.route("/<int:unit_id>/status", methods=["POST"])
@login_required
def set_status(unit_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    actor = current_actor()
    assert actor is not None
    unit = ops.set_status(get_db(), actor, unit_id, request.form.get("status", ""))
    flash(
        _("Unit '%(name)s' is now %(status)s.", name=unit.name, status=_status_label(unit.status)),
        "success",
    )
    return redirect(url_for("units.index"))


def _status_label(status: str) -> str:
    from mapservice.core.vocab import UnitStatus

    return UnitStatus(status).label(lang())
