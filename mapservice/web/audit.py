"""The audit log page: what was done to the committee's records, by whom and when, with what
changed; filters, pages, CSV / XLSX export. Who sees which entries: ``policy/audit.py``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_login import login_required

from mapservice.core.errors import ValidationFailed
from mapservice.operations import audit as ops
from mapservice.stats.export import csv_chunks, sheets_file, written
from mapservice.web.auth import current_actor
from mapservice.web.dashboard import EXPORT_TYPES
from mapservice.web.database import get_db
from mapservice.web.streaming import download, file_download, with_read_session

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _label(key: str) -> str | None:
    """A detail's translated label; None for a key that has none (shown as code)."""
    label = ops.field_label(key)
    return None if label == key else label


@bp.route("/")
@login_required
def index() -> Any:
    actor = ops.require_reader(current_actor())
    try:
        flt = ops.parse_filter(request.args)
    except ValidationFailed as exc:
        return render_template(
            "audit/index.html",
            page=None,
            flt=request.args,
            errors=exc.fields,
            actions=ops.ACTIONS,
            kinds=ops.KINDS,
            show=ops.show,
            label=_label,
        ), 422
    page = ops.audit_page(get_db(), actor, flt)
    return render_template(
        "audit/index.html",
        page=page,
        flt=request.args,
        args=flt.as_args(),
        errors={},
        actions=ops.ACTIONS,
        kinds=ops.KINDS,
        show=ops.show,
        label=_label,
    )


@bp.route("/export.<fmt>")
@login_required
def export(fmt: str) -> Any:
    """The filtered log as CSV (streamed a thousand entries at a time, read by a session of
    the body's own) or XLSX (written to a temporary file, then sent from it)."""
    if fmt not in ops.FORMATS:
        abort(404)
    flt = ops.parse_filter(request.args)
    stmt, tz = ops.export_select(get_db(), current_actor(), flt)
    columns = ops.export_columns()
    if fmt == "csv":
        body, session = with_read_session(
            lambda s: csv_chunks(
                [c.zh for c in columns], written(columns, ops.export_rows(s, stmt, tz))
            )
        )
        return download(body, EXPORT_TYPES[fmt], "audit.csv", on_close=[session.close])
    path = sheets_file([("audit", columns, ops.export_rows(get_db(), stmt, tz))])
    return file_download(path, EXPORT_TYPES[fmt], "audit.xlsx")
