"""The account pages: one's contact details and password, and personal access tokens for
the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _
from mapservice.models import ApiToken
from mapservice.models.tokens import SCOPES
from mapservice.operations import accounts
from mapservice.operations import tokens as ops
from mapservice.operations.revocation import revoke_tokens
from mapservice.web.account_forms import ContactForm, PasswordForm
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db

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
    return render_template("account/profile.html", contact=contact, password=password), status


@bp.route("/", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    """One's name as shown, phone and e-mail (GET shows them with the password form)."""
    actor = current_actor()
    assert actor is not None
    contact = ContactForm(obj=actor if request.method == "GET" else None)
    if contact.validate_on_submit():
        try:
            accounts.update_contact(
                get_db(),
                actor,
                display_name=contact.display_name.data or "",
                phone=contact.phone.data or "",
                email=contact.email.data or "",
            )
        except ValidationFailed as exc:
            for name, message in exc.fields.items():
                getattr(contact, name).errors = [message]
            return _profile(contact, PasswordForm(formdata=None), 422)
        flash(_("Your details are saved."), "success")
        return redirect(url_for("account.profile"))
    return _profile(contact, PasswordForm(formdata=None), 422 if request.method == "POST" else 200)


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
            for name, message in exc.fields.items():
                getattr(form, name).errors = [message]
        else:
            flash(_("Your password is changed."), "success")
            return redirect(url_for("account.profile"))
    return _profile(ContactForm(obj=actor, formdata=None), form, 422)
