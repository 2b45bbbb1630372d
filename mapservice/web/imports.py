"""Bulk import of venues from an uploaded file: all or nothing, with a row-numbered report."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template
from flask_login import login_required

from mapservice.core.errors import ImportRejected
from mapservice.core.i18n import _, lang
from mapservice.core.venue_io import MAX_ROWS, accepted_headers, message, read_venues
from mapservice.models import Committee
from mapservice.operations import venues as ops
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import ImportForm

bp = Blueprint("imports", __name__, url_prefix="/import")


@bp.route("/venues", methods=["GET", "POST"])
@login_required
def venues() -> Any:
    actor = current_actor()
    assert actor is not None
    if not (actor.is_admin or actor.is_secretary):
        from mapservice.core.errors import NotAllowed

        raise NotAllowed(
            "not_allowed", _("Only committee admins and unit secretaries may import venues.")
        )
    form = ImportForm()
    max_rows = int(current_app.config.get("IMPORT_MAX_ROWS", MAX_ROWS))
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.read()
        rows, errors = read_venues(data, upload.filename or "", max_rows=max_rows)
        problems = [message(e, lang()) for e in errors]
        committee = get_db().get(Committee, actor.committee_id)
        assert committee is not None
        # Every problem at once: rows the file reader refused and rows the database refuses.
        # With the former, the good rows are only checked, never written.
        report = None
        if problems:
            region = ops.Region.of(get_db(), committee)
            problems += ops.check_import(get_db(), actor, committee, rows, region)[1]
        else:
            try:
                report = ops.import_venues(get_db(), actor, committee, rows)
            except ImportRejected as exc:
                problems += exc.errors
        if report is not None and not problems:
            return render_template(
                "imports/venues.html",
                form=ImportForm(formdata=None),
                report=report,
                problems=[],
                max_rows=max_rows,
                headers=accepted_headers(),
            )
        return render_template(
            "imports/venues.html",
            form=form,
            report=None,
            problems=problems,
            max_rows=max_rows,
            headers=accepted_headers(),
        ), 422
    status = 422 if form.is_submitted() else 200
    page = render_template(
        "imports/venues.html",
        form=form,
        report=None,
        problems=[],
        max_rows=max_rows,
        headers=accepted_headers(),
    )
    return page, status
