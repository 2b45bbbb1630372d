"""Log-in and log-out."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from mapservice.core.i18n import _
from mapservice.db import utcnow
from mapservice.models import User
from mapservice.operations import login_sessions, throttle
from mapservice.operations.users import authenticate
from mapservice.web.database import get_db, new_session
from mapservice.web.forms import LoginForm

bp = Blueprint("auth", __name__)

#: The cookie's key for the session secret (its row: operations.login_sessions).
SESSION_KEY = "sid"


def resume_session(user_id: int) -> User | None:
    """Flask-Login's user loader: the user of this cookie while its session is live on the
    server (not logged out, not ended by a password or role change, the user active)."""
    now = utcnow()
    found = login_sessions.live_session(get_db(), user_id, current_secret(), now)
    if found is None:
        return None
    user, row = found
    if login_sessions.needs_touch(row, now):
        with new_session() as writer:  # its own short write, not this request's transaction
            login_sessions.touch(writer, row.id, now)
            writer.commit()
    return user


def current_secret() -> str | None:
    secret = session.get(SESSION_KEY)
    return secret if isinstance(secret, str) else None


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
        username = form.username.data or ""
        address = request.remote_addr or "-"
        now = utcnow()
        # Count the attempt as a failure first, in its own committed transaction (so a refused
        # or crashed request still counts); a success then flips it within this request.
        with new_session() as attempts:
            throttle.lock_address(attempts, address)  # count and record as one step
            wait = throttle.blocked_for(attempts, username, address, now)
            if wait is None:
                failures = throttle.account_failures(attempts, username, now)
                attempt_id = throttle.record_attempt(attempts, username, address, now)
            attempts.commit()
        if wait is None:
            # An account under attack from elsewhere is slowed, never shut (no lock held here).
            time.sleep(throttle.delay_for(failures) * current_app.config["LOGIN_DELAY_SCALE"])
        if wait is not None:
            form.password.errors = [
                _(
                    "Too many failed log-ins; try again in %(minutes)s minutes.",
                    minutes=max(1, int(wait.total_seconds() // 60) + 1),
                )
            ]
            return render_template("auth/login.html", form=form), 429
        user = authenticate(get_db(), username, form.password.data or "")
        if user is not None:
            throttle.mark_success(get_db(), attempt_id)
            session.clear()  # a fresh session on log-in
            session[SESSION_KEY] = login_sessions.open_session(
                get_db(),
                user,
                now,
                address=address,
                user_agent=request.headers.get("User-Agent", ""),
            )
            login_user(user)
            flash(_("Welcome, %(name)s.", name=user.display_name), "success")
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors = [_("Wrong user name or password.")]
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    login_sessions.end_session(get_db(), current_secret(), utcnow())
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("venues.index"))
