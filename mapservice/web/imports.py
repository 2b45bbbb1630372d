"""Bulk import of venues from an uploaded file: all or nothing, with a row-numbered report
(the rules: :mod:`mapservice.operations.imports`, shared with ``mapservice import venues``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template
from flask_login import login_required

from mapservice.core.errors import ImportRejected
from mapservice.core.venue_io import accepted_headers
from mapservice.models import Committee
from mapservice.operations.imports import (
    ImportReport,
    import_venue_file,
    max_rows_of,
    require_importer,
)
from mapservice.web.auth import current_actor
from mapservice.web.database import end_read_phase, get_db, read_session
from mapservice.web.forms import ImportForm

bp = Blueprint("imports", __name__, url_prefix="/import")


def _page(form: ImportForm, report: ImportReport | None, problems: list[str], status: int) -> Any:
    limit = max_rows_of(current_app.config)
    page = render_template(
        "imports/venues.html", form=form, report=report, problems=problems, max_rows=limit,
        headers=accepted_headers(),
    )  # fmt: skip
    return page, status


@bp.route("/venues", methods=["GET", "POST"])
@login_required
def venues() -> Any:
    actor = current_actor()
    assert actor is not None
    require_importer(actor)
    form = ImportForm()
    if not form.validate_on_submit():
        return _page(form, None, [], 422 if form.is_submitted() else 200)
    upload = form.file.data
    committee = get_db().get(Committee, actor.committee_id)
    assert committee is not None
    # Nothing written yet: let go of the writer (SQLite's lock) while the file is read and
    # checked; a refused file never takes it again.
    end_read_phase()
    checker = read_session()
    try:
        report = import_venue_file(
            get_db(),
            actor,
            committee,
            upload.read(),
            upload.filename or "",
            max_rows=max_rows_of(current_app.config),
            checker=checker,
        )
    except ImportRejected as exc:
        return _page(form, None, exc.errors, 422)
    finally:
        checker.close()
    return _page(ImportForm(formdata=None), report, [], 200)
