"""The committee's dashboard: utilization, sharing, coverage — tables, charts, maps, exports
and the printed one map. A committee admin sees the committee, a unit secretary its own
unit's venues, a booker nothing (403). The figures come from :mod:`mapservice.stats`."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import login_required
from werkzeug.wrappers import Response

from mapservice.core.dates import parse_day
from mapservice.core.errors import NotFound, ValidationFailed
from mapservice.core.i18n import _, current_locale
from mapservice.core.memory import release_free_heap
from mapservice.core.vocab import VenueType
from mapservice.models import Committee, Unit, User
from mapservice.operations.printing import FORMATS, PAPERS, print_committee_map
from mapservice.operations.utilization import stats_scope
from mapservice.stats import charts, export, isolated
from mapservice.stats.fonts import FontMissing
from mapservice.stats.frames import LOAD_PARTS, Scope
from mapservice.stats.periods import KINDS, Period, period_for
from mapservice.stats.report import (
    DEFAULT_COVERAGE_TYPE,
    DEFAULT_THRESHOLD,
    GROUP_BYS,
    Report,
    Table,
    build_report,
    tables,
    without_booking_rows,
)
from mapservice.stats.tablepage import DASHBOARD_ROWS, parse_page, table_page
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.streaming import download, file_download

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
CACHE_SECONDS = 60
_lock = threading.Lock()
#: Held while a report is built (see :func:`_report`).
_building = threading.Lock()


def _actor() -> tuple[User, Scope]:
    actor = current_actor()
    if actor is None:
        abort(401)
    return actor, stats_scope(actor)


def _date(name: str, default: date) -> date:
    text = request.args.get(name, "").strip()
    if not text:
        return default
    try:
        return parse_day(text)
    except ValueError:
        raise ValidationFailed(
            _("Please give dates as YYYY-MM-DD."), {name: _("Not a date: %(v)s", v=text)}
        ) from None


def _number(name: str, default: float, lo: float, hi: float) -> float:
    text = request.args.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:
        raise ValidationFailed(
            _("A value is out of range."),
            {name: _("Between %(lo)s and %(hi)s.", lo=f"{lo:g}", hi=f"{hi:g}")},
        )
    return value


def _params(tz: ZoneInfo) -> dict[str, Any]:
    args = request.args
    kind = args.get("period", "month")
    if kind not in KINDS:
        kind = "month"
    today = datetime.now(tz).date()
    try:
        if kind == "custom":
            period = period_for(
                "custom", _date("start", today.replace(day=1)), tz, last_day=_date("end", today)
            )
        else:
            period = period_for(kind, _date("at", today), tz)
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"end": str(exc)}) from None
    by = args.get("by", "venue")
    ctype = args.get("type", DEFAULT_COVERAGE_TYPE)
    return {
        "period": period,
        "by": by if by in GROUP_BYS else "venue",
        "threshold": _number("threshold", DEFAULT_THRESHOLD * 100, 0, 100) / 100,
        "type": ctype if ctype in {t.value for t in VenueType} else DEFAULT_COVERAGE_TYPE,
        "radius_km": _number("radius", 1.0, 0.1, 20),
    }


def _report(actor: User, scope: Scope) -> tuple[Report, dict[str, Any], Committee]:
    """Build (or reuse, for a minute) the report the request's parameters ask for: the page
    and its dozen chart images then cost one computation."""
    db = get_db()
    committee = db.get(Committee, actor.committee_id)
    assert committee is not None
    params = _params(ZoneInfo(committee.timezone))
    period: Period = params["period"]
    key = (
        scope,
        period.kind,
        period.first_day,
        period.last_day,
        params["by"],
        params["threshold"],
        params["type"],
        params["radius_km"],
        current_locale(),
    )
    cache: dict[Any, tuple[float, Report]] = current_app.extensions.setdefault("stats_cache", {})

    def cached() -> Report | None:
        with _lock:
            hit = cache.get(key)
            return hit[1] if hit and time.monotonic() - hit[0] < CACHE_SECONDS else None

    if (report := cached()) is not None:
        return report, params, committee
    # One build at a time in a process: a build over a city's year holds every booking, so
    # the page's dozen chart requests arriving together (or two admins) must not each build
    # one at once; those asking for the same report wait and take the one built.
    with _building:
        if (report := cached()) is not None:
            return report, params, committee
        with _lock:  # the expired ones go before the build, not after: not held through it
            _drop_expired(cache, time.monotonic())
        options: dict[str, Any] = {
            "group_by": params["by"],
            "threshold": params["threshold"],
            "coverage_type": params["type"],
            "radius_m": params["radius_km"] * 1000,
            "load_parts": LOAD_PARTS,  # a GET: its session has written nothing
        }
        builder = current_app.config.get("REPORT_BUILDER")
        report = None
        if builder:  # under gunicorn: built in a process of its own (stats.isolated)
            job = isolated.Job(scope, period, options, current_locale())
            report = isolated.build(builder, job)
        if report is None:
            report = without_booking_rows(build_report(db, scope, period, **options))
            # The build read every booking of the period into frames now freed: their pages
            # go back to the system rather than stay beside the next heavy page's.
            release_free_heap()
        now = time.monotonic()
        with _lock:
            _drop_expired(cache, now)
            if len(cache) > 32:
                cache.clear()
            cache[key] = (now, report)
    return report, params, committee


def _drop_expired(cache: dict[Any, tuple[float, Report]], now: float) -> None:
    for k in [k for k, (t, _r) in cache.items() if now - t >= CACHE_SECONDS]:
        del cache[k]


def _attachment(data: bytes, mimetype: str, filename: str, download: bool = True) -> Response:
    response = Response(data, mimetype=mimetype)
    if download:
        response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@bp.route("/")
@login_required
def index() -> Any:
    actor, scope = _actor()
    report, params, committee = _report(actor, scope)
    unit = get_db().get(Unit, actor.unit_id) if actor.unit_id else None
    query = request.args.to_dict()
    return render_template(
        "dashboard/index.html",
        report=report,
        params=params,
        committee=committee,
        unit=unit,
        tables=tables(report),
        charts=list(charts.CHARTS),
        query=query,
        prev_at=report.period.shifted(-1).first_day.isoformat(),
        next_at=report.period.shifted(1).first_day.isoformat(),
        kinds=KINDS,
        group_bys=GROUP_BYS,
        papers=list(PAPERS),
        rows_shown=DASHBOARD_ROWS,
    )


@bp.route("/chart/<name>.<fmt>")
@login_required
def chart(name: str, fmt: str) -> Any:
    actor, scope = _actor()
    if name not in charts.CHARTS or fmt not in ("png", "svg"):
        abort(404)
    report, _params_, _c = _report(actor, scope)
    data = charts.chart(report, name, fmt)
    mimetype = "image/png" if fmt == "png" else "image/svg+xml"
    filename = f"{name}-{report.period.first_day.isoformat()}.{fmt}"
    return _attachment(data, mimetype, filename, download=bool(request.args.get("download")))


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _table(all_tables: dict[str, Table], name: str) -> Table:
    """The table named in the address; a NotFound naming the ones there are."""
    if name not in all_tables:
        raise NotFound(
            "table_not_found",
            _(
                "There is no table '%(name)s'. The tables: %(names)s.",
                name=name[:40],
                names=", ".join(all_tables),
            ),
        )
    return all_tables[name]


def export_response(all_tables: dict[str, Table], name: str, fmt: str, filename: str) -> Response:
    """A table (``name``; ``all`` for every table as one XLSX) as a streamed download named
    ``filename``: CSV produced a chunk of rows at a time, XLSX written to a temporary file
    (openpyxl's write-only mode) and sent from it. Refusals (an unknown table or format)
    happen here, before anything is sent."""
    if fmt not in EXPORT_TYPES:
        raise NotFound(
            "format_not_found",
            _("There is no export as '%(fmt)s': CSV or XLSX.", fmt=fmt[:20]),
        )
    if name == "all" and fmt == "xlsx":
        path = export.xlsx_file(list(all_tables.values()), [t.title for t in all_tables.values()])
        return file_download(path, EXPORT_TYPES[fmt], filename)
    table = _table(all_tables, name)
    if fmt == "csv":
        return download(export.table_csv_chunks(table), EXPORT_TYPES[fmt], filename)
    return file_download(export.xlsx_file([table]), EXPORT_TYPES[fmt], filename)


@bp.route("/export/<name>.<fmt>")
@login_required
def export_table(name: str, fmt: str) -> Any:
    actor, scope = _actor()
    report, _params_, _c = _report(actor, scope)
    stamp = report.period.first_day.isoformat()
    filename = f"stats-{stamp}.{fmt}" if name == "all" else f"{name}-{stamp}.{fmt}"
    return export_response(tables(report), name, fmt, filename)


@bp.route("/table/<name>")
@login_required
def table(name: str) -> Any:
    """One table of the dashboard whole, a page at a time, sorted by the column asked
    (``?sort=<column>&desc=1&page=N`` beside the dashboard's own parameters)."""
    actor, scope = _actor()
    report, params, committee = _report(actor, scope)
    found = _table(tables(report), name)
    sort = request.args.get("sort", "").strip() or None
    page = table_page(
        found,
        parse_page(request.args.get("page")),
        sort=sort,
        descending=request.args.get("desc", "") in ("1", "true"),
    )
    query = {k: v for k, v in request.args.to_dict().items() if k not in ("page", "sort", "desc")}
    return render_template(
        "dashboard/table.html",
        t=found,
        page=page,
        report=report,
        params=params,
        committee=committee,
        query=query,
    )


@bp.route("/print.<fmt>")
@login_required
def print_one_map(fmt: str) -> Any:
    """The printed one map of every published venue of the committee (public information)."""
    actor, scope = _actor()
    paper = request.args.get("paper", "A3")
    if fmt not in FORMATS or paper not in PAPERS:
        abort(404)
    committee = get_db().get(Committee, actor.committee_id)
    assert committee is not None
    try:
        printed = print_committee_map(get_db(), committee, paper=paper, fmt=fmt)
    except FontMissing as exc:
        current_app.logger.error("%s", exc)
        raise ValidationFailed(_("The server has no Chinese font to print with."), {}) from exc
    return _attachment(printed.data, printed.mimetype, printed.filename)
