"""Log-in and log-out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from mapservice.core.i18n import _
from mapservice.models import User
from mapservice.operations.users import authenticate
from mapservice.web.database import get_db
from mapservice.web.forms import LoginForm

bp = Blueprint("auth", __name__)


def current_actor() -> User | None:
    """The signed-in user, or None for a public visitor."""
    return current_user._get_current_object() if current_user.is_authenticated else None


def _safe_next(target: str | None) -> str:
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("venues.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(get_db(), form.username.data or "", form.password.data or "")
        if user is not None:
            session.clear()  # a fresh session on log-in
            login_user(user)
            flash(_("Welcome, %(name)s.", name=user.display_name), "success")
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors = [_("Wrong user name or password.")]
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("venues.index"))
