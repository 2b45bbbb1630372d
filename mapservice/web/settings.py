"""The committee's settings page (its admin only): display name, time zone, the printed
map's title, the rules new venues start with. The rules: ``operations/settings.py``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from mapservice.core import venue_spec
from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import BookableBy
from mapservice.operations import settings as ops
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import _label, _number, options

bp = Blueprint("settings", __name__, url_prefix="/settings")


class SettingsForm(FlaskForm):
    name = StringField(_l("Display name"), validators=[DataRequired(), Length(max=ops.NAME_MAX)])
    name_en = StringField(_l("Name in English"), validators=[Optional(), Length(max=ops.NAME_MAX)])
    timezone = SelectField(_l("Time zone"))
    print_title = StringField(
        _l("Title of the printed map"), validators=[Optional(), Length(max=ops.TITLE_MAX)]
    )
    slot_minutes = SelectField(
        _label("slot_minutes"),
        coerce=int,
        choices=options((m, m) for m in venue_spec.field("slot_minutes").choices),
    )
    min_duration_minutes = _number("min_duration_minutes")
    max_duration_minutes = _number("max_duration_minutes")
    max_days_ahead = _number("max_days_ahead")
    min_notice_minutes = _number("min_notice_minutes")
    weekly_quota_hours = _number("weekly_quota_hours")
    hold_hours = _number("hold_hours")
    cancel_cutoff_minutes = _number("cancel_cutoff_minutes")
    bookable_by = SelectField(_label("bookable_by"))
    requires_approval = BooleanField(_label("requires_approval"))


def _settings(form: SettingsForm) -> ops.Settings:
    return ops.Settings(
        name=form.name.data or "",
        name_en=form.name_en.data or "",
        timezone=form.timezone.data or "",
        print_title=form.print_title.data or "",
        defaults={k: getattr(form, k).data for k in ops.DEFAULTS},
    )


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    db = get_db()
    committee, current = ops.settings_of(db, current_actor())
    form = SettingsForm()
    form.timezone.choices = options(ops.timezones(current.timezone))
    form.bookable_by.choices = options(BookableBy.choices(lang()))
    if not form.is_submitted():
        for key in ("name", "name_en", "timezone", "print_title"):
            getattr(form, key).data = getattr(current, key)
        for key, value in current.defaults.items():
            getattr(form, key).data = value
    status = 200
    if form.is_submitted():
        status = 422
        if form.validate():
            try:
                ops.save_settings(db, current_actor(), _settings(form))
            except ValidationFailed as exc:
                for name, message in exc.fields.items():
                    field = getattr(form, name, None)
                    if field is not None:
                        field.errors = [*field.errors, message]
                    else:
                        flash(message, "danger")
            else:
                flash(_("Settings saved."), "success")
                return redirect(url_for("settings.index"))
    return render_template("settings/index.html", form=form, committee=committee), status
