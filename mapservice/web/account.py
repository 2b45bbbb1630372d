"""The account pages: one's contact details and password, and personal access tokens for
the API."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _
from mapservice.core.ids import as_id
from mapservice.db import utcnow
from mapservice.models import ApiToken
from mapservice.models.tokens import SCOPES
from mapservice.operations import accounts, login_sessions
from mapservice.operations import tokens as ops
from mapservice.operations.revocation import revoke_tokens
from mapservice.operations.tokens import digest
from mapservice.web.account_forms import ContactForm, PasswordForm
from mapservice.web.auth import current_actor, current_secret
from mapservice.web.database import get_db
from mapservice.web.forms import attach_errors, form_values, submit_form

bp = Blueprint("account", __name__, url_prefix="/account")


def scope_labels() -> dict[str, tuple[str, str]]:
    """Each token scope's name and what it lets the token do, in the reader's language."""
    return {
        "read": (_("Read"), _("See venues, availability and your bookings.")),
        "book": (_("Book"), _("Book, cancel and move bookings.")),
        "manage": (_("Manage"), _("Register and change venues, decide on requests.")),
    }


def _page(secret: str | None = None, status: int = 200) -> Any:
    actor = current_actor()
    assert actor is not None
    rows = get_db().scalars(
        select(ApiToken).where(ApiToken.user_id == actor.id).order_by(ApiToken.id.desc())
    )
    return render_template(
        "account/tokens.html",
        tokens=list(rows),
        scopes=SCOPES,
        scope_labels=scope_labels(),
        secret=secret,
    ), status


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Any:
    actor = current_actor()
    assert actor is not None
    if request.method == "POST":
        try:
            scopes = ops.parse_scopes(",".join(request.form.getlist("scopes")))
        except ValidationFailed as exc:
            flash(exc.message, "danger")
            return _page(status=422)
        _token, secret = ops.create_token(
            get_db(), actor, actor, scopes, request.form.get("name", "")
        )
        return _page(secret)
    return _page()


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    revoke_tokens(get_db(), actor, actor, token_id=token_id)
    flash(_("Token revoked."), "success")
    return redirect(url_for("account.tokens"))


def _profile(contact: ContactForm, password: PasswordForm, status: int = 200) -> Any:
    actor = current_actor()
    assert actor is not None
    sessions = login_sessions.sessions_of(get_db(), actor, utcnow())
    here = current_secret()
    tz = ZoneInfo(actor.committee.timezone)
    return render_template(
        "account/profile.html",
        contact=contact,
        password=password,
        sessions=sessions,
        local_time=lambda at: at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        this_session=next((s.id for s in sessions if here and s.token_hash == digest(here)), None),
    ), status


@bp.route("/sessions/end", methods=["POST"])
@login_required
def end_sessions() -> Any:
    """ "Log out everywhere else" (``scope=others``, this browser stays in) or one session
    (``session_id``): its cookie stops working at once, wherever it was copied."""
    actor = current_actor()
    assert actor is not None
    now = utcnow()
    one = as_id(request.form.get("session_id"))
    if one is not None:
        login_sessions.end_one(get_db(), actor, one, now)
        flash(_("That session has ended."), "success")
    else:
        ended = login_sessions.end_sessions(get_db(), actor, now, keep_secret=current_secret())
        flash(_("Logged out everywhere else: %(n)s sessions ended.", n=ended), "success")
    return redirect(url_for("account.profile"))


@bp.route("/", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    """One's name as shown, phone and e-mail (GET shows them with the password form)."""
    actor = current_actor()
    assert actor is not None
    contact = ContactForm(obj=actor if request.method == "GET" else None)
    return submit_form(
        contact,
        lambda: accounts.update_contact(
            get_db(),
            actor,
            **form_values(contact, "display_name", "phone", "email"),
        ),
        lambda status: _profile(contact, PasswordForm(formdata=None), status),
        lambda _saved: _("Your details are saved."),
        url_for("account.profile"),
    )


@bp.route("/password", methods=["POST"])
@login_required
def password() -> Any:
    actor = current_actor()
    assert actor is not None
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(get_db(), actor, form.current.data or "", form.new.data or "")
        except ValidationFailed as exc:
            attach_errors(form, exc)
        else:
            # The change ended every session made with the old password; this one goes on.
            login_sessions.renew(get_db(), actor, current_secret())
            flash(_("Your password is changed."), "success")
            return redirect(url_for("account.profile"))
    return _profile(ContactForm(obj=actor, formdata=None), form, 422)
