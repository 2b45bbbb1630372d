"""The dashboard's activity figures (issue 20): activities per unit against the plan,
participants, the sign-up fill rate and the streets reached — a page of tables and charts,
each table as CSV or XLSX (all of them as one XLSX). The admin sees the committee's, a unit
secretary its own unit's (as lead), a booker nothing (403). The figures come from
:mod:`mapservice.stats.activities`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template, request
from flask_login import login_required

from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import lang
from mapservice.models import Committee, Unit, User
from mapservice.operations.utilization import stats_scope
from mapservice.stats import activities as stats
from mapservice.stats.frames import Scope
from mapservice.stats.periods import KINDS, period_for
from mapservice.web.auth import current_actor
from mapservice.web.dashboard import _attachment, _date, export_response
from mapservice.web.database import get_db

bp = Blueprint("activity_stats", __name__, url_prefix="/dashboard/activities")


def _figures() -> tuple[stats.ActivityFigures, User, Committee]:
    actor = current_actor()
    if actor is None:
        abort(401)
    scope: Scope = stats_scope(actor)
    committee = get_db().get(Committee, actor.committee_id)
    assert committee is not None
    tz = ZoneInfo(committee.timezone)
    now = datetime.now(tz)
    kind = request.args.get("period", "year")
    kind = kind if kind in KINDS else "year"
    try:
        if kind == "custom":
            period = period_for(
                "custom",
                _date("start", now.date().replace(month=1, day=1)),
                tz,
                last_day=_date("end", now.date()),
            )
        else:
            period = period_for(kind, _date("at", now.date()), tz)
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"end": str(exc)}) from None
    return stats.build(get_db(), scope, period, now, lang()), actor, committee


@bp.route("/")
@login_required
def index() -> Any:
    figures, actor, committee = _figures()
    query = request.args.to_dict()
    return render_template(
        "dashboard/activities.html",
        f=figures,
        tables=stats.tables(figures),
        committee=committee,
        unit=get_db().get(Unit, actor.unit_id) if actor.unit_id else None,
        query=query,
        prev_at=figures.period.shifted(-1).first_day.isoformat(),
        next_at=figures.period.shifted(1).first_day.isoformat(),
    )


@bp.route("/chart/<name>.<fmt>")
@login_required
def chart(name: str, fmt: str) -> Any:
    if name not in stats.CHARTS or fmt not in ("png", "svg"):
        abort(404)
    figures, _actor, _c = _figures()
    data = stats.chart(figures, name, fmt)
    mimetype = "image/png" if fmt == "png" else "image/svg+xml"
    filename = f"activities-{name}-{figures.period.first_day.isoformat()}.{fmt}"
    return _attachment(data, mimetype, filename, download=bool(request.args.get("download")))


@bp.route("/export/<name>.<fmt>")
@login_required
def export_table(name: str, fmt: str) -> Any:
    figures, _actor, _c = _figures()
    stamp = figures.period.first_day.isoformat()
    filename = f"activities-{stamp}.{fmt}" if name == "all" else f"activities-{name}-{stamp}.{fmt}"
    return export_response(stats.tables(figures), name, fmt, filename)
