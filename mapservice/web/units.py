"""Member units: the committee admin admits, suspends and edits them; others see the list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import BookingStatus, UnitKind, UnitStatus
from mapservice.models import Booking, Group, Unit, Venue
from mapservice.operations import applications
from mapservice.operations import units as ops
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import EmptyForm, UnitForm, form_values, options, submit_form

bp = Blueprint("units", __name__, url_prefix="/units")


@bp.route("/")
@login_required
def index() -> Any:
    actor = current_actor()
    db = get_db()
    rows = db.execute(
        select(Unit, func.count(Venue.id))
        .outerjoin(Venue, (Venue.unit_id == Unit.id) & Venue.retired.is_(False))
        .where(policy.units_seen_by(actor))
        .group_by(Unit.id)
        .order_by(Unit.status, Unit.name)
    ).all()
    questions: dict[int, str] = {}
    applying = applications.applying_units(db, actor)
    if actor is not None and actor.is_admin:
        ids = [u.id for u, _n in rows if u.status != UnitStatus.SUSPENDED.value]
        effects = suspension_effects(db, ids)
        questions = {
            u.id: "\n".join(suspend_question(u, effects[u.id])) for u, _n in rows if u.id in effects
        }
    return render_template(
        "units/list.html",
        rows=rows,
        button_form=EmptyForm(),
        suspend_questions=questions,
        applying=applying,
    )


@dataclass(frozen=True)
class SuspensionEffects:
    """What suspending a unit touches: its venues (not retired), its active groups, and the
    upcoming bookings (pending or confirmed) at its venues and of its groups."""

    venues: int = 0
    groups: int = 0
    bookings_at: int = 0
    bookings_by: int = 0


def suspension_effects(db: Session, unit_ids: list[int]) -> dict[int, SuspensionEffects]:
    if not unit_ids:
        return {}
    now = datetime.now(UTC)
    active = (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)
    upcoming = (Booking.end_at > now, Booking.status.in_(active))
    statements = {
        "venues": select(Venue.unit_id, func.count(Venue.id))
        .where(Venue.unit_id.in_(unit_ids), Venue.retired.is_(False))
        .group_by(Venue.unit_id),
        "groups": select(Group.unit_id, func.count(Group.id))
        .where(Group.unit_id.in_(unit_ids), Group.active.is_(True))
        .group_by(Group.unit_id),
        "bookings_at": select(Venue.unit_id, func.count(Booking.id))
        .join(Venue, Venue.id == Booking.venue_id)
        .where(Venue.unit_id.in_(unit_ids), *upcoming)
        .group_by(Venue.unit_id),
        "bookings_by": select(Group.unit_id, func.count(Booking.id))
        .join(Group, Group.id == Booking.group_id)
        .where(Group.unit_id.in_(unit_ids), *upcoming)
        .group_by(Group.unit_id),
    }
    counts: dict[str, dict[int, int]] = {
        key: {unit_id: n for unit_id, n in db.execute(stmt).all() if unit_id is not None}
        for key, stmt in statements.items()
    }
    return {i: SuspensionEffects(**{k: v.get(i, 0) for k, v in counts.items()}) for i in unit_ids}


def suspend_question(unit: Unit, effects: SuspensionEffects) -> list[str]:
    """What the admin confirms before suspending ``unit``, line by line (what suspension does
    here: visitors' map and lists leave its venues out, its groups cannot book, bookings
    already made are kept)."""
    return [
        _("Suspend %(unit)s?", unit=unit.name),
        _(
            "Its %(n)s venue(s) leave the public map (logged-in members still find and book them).",
            n=effects.venues,
        ),
        _("Its %(n)s group(s) can no longer book.", n=effects.groups),
        _(
            "%(at)s upcoming booking(s) at its venues and %(by)s by its groups are kept;"
            " cancel them separately if they should not take place.",
            at=effects.bookings_at,
            by=effects.bookings_by,
        ),
    ]


def _form_page(form: UnitForm, unit: Unit | None, status: int = 200) -> Any:
    return render_template("units/form.html", form=form, unit=unit), status


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:unit_id>/edit", methods=["GET", "POST"])
@login_required
def edit(unit_id: int | None = None) -> Any:
    actor = current_actor()
    policy.require_committee_admin(actor)
    assert actor is not None
    unit = policy.get_unit(get_db(), actor, unit_id, edit=True) if unit_id else None
    form = UnitForm(obj=unit if request.method == "GET" else None)
    form.kind.choices = options(UnitKind.choices(lang()))
    return submit_form(
        form,
        lambda: ops.save_unit(
            get_db(),
            actor,
            **form_values(form, "name", "kind", "secretary", "phone", "name_en"),
            unit=unit,
        ),
        lambda status: _form_page(form, unit, status),
        lambda saved: _("Unit '%(name)s' saved.", name=saved.name),
        url_for("units.index"),
    )


@bp.route("/<int:unit_id>/status", methods=["POST"])
@login_required
def set_status(unit_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    actor = current_actor()
    assert actor is not None
    status = request.form.get("status", "")
    if status == UnitStatus.SUSPENDED.value and request.form.get("confirmed") != "1":
        # Ask first, saying what it does (the list's button asks in a dialog and confirms).
        unit = policy.get_unit(get_db(), actor, unit_id, edit=True)
        if unit.status != UnitStatus.SUSPENDED.value:
            effects = suspension_effects(get_db(), [unit.id])[unit.id]
            return render_template(
                "units/suspend.html",
                unit=unit,
                lines=suspend_question(unit, effects),
                button_form=EmptyForm(),
            )
    unit = ops.set_status(get_db(), actor, unit_id, status)
    flash(
        _("Unit '%(name)s' is now %(status)s.", name=unit.name, status=_status_label(unit.status)),
        "success",
    )
    return redirect(url_for("units.index"))


def _status_label(status: str) -> str:
    from mapservice.core.vocab import UnitStatus

    return UnitStatus(status).label(lang())
