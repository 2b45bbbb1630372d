"""Accounts: the admin's and a unit secretary's list of the accounts they manage (new,
deactivate, reactivate, a one-time set-password link to copy), and the public page where
such a link sets the password."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mapservice import policy
from mapservice.booking import notices
from mapservice.core.errors import NotFound, ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.ids import as_id
from mapservice.core.vocab import Role
from mapservice.models import Committee, Group, User
from mapservice.operations import accounts as ops
from mapservice.web.account_forms import SetPasswordForm, UserForm
from mapservice.web.auth import current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import EmptyForm, attach_errors, form_values
from mapservice.web.groups import unit_choices

bp = Blueprint("users", __name__, url_prefix="/users")
links = Blueprint("password_links", __name__)


def _manager() -> User:
    return policy.require_group_manager(current_actor())


@bp.route("/")
@login_required
def index() -> Any:
    actor = _manager()
    users = get_db().scalars(
        select(User)
        .where(policy.users_managed_by(actor))
        .options(selectinload(User.unit), selectinload(User.group))
        .order_by(User.active.desc(), User.role, User.username)
    )
    return render_template("users/list.html", users=list(users), button_form=EmptyForm())


def _role_choices(actor: User) -> list[tuple[str, str]]:
    roles = [Role.BOOKER] if actor.is_secretary else [Role.UNIT_SECRETARY, Role.BOOKER]
    return [(r.value, r.label(lang())) for r in roles]


def _group_choices(actor: User) -> list[tuple[str, str]]:
    groups = get_db().scalars(
        select(Group)
        .where(policy.groups_managed_by(actor), Group.active.is_(True))
        .order_by(Group.name)
    )
    return [(str(g.id), g.name) for g in groups]


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    actor = _manager()
    form = UserForm()
    form.role.choices = _role_choices(actor)
    form.unit_id.choices = [c for c in unit_choices(actor) if c[0]]
    form.group_id.choices = _group_choices(actor)
    if request.method == "GET" and as_id(request.args.get("group")) is not None:
        form.role.data, form.group_id.data = Role.BOOKER.value, request.args["group"]
    status = 422 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            user = ops.create_account(
                get_db(),
                actor,
                **form_values(form, "username", "role", "display_name", "phone", "email"),
                unit_id=as_id(form.unit_id.data),
                group_id=as_id(form.group_id.data),
            )
        except ValidationFailed as exc:
            attach_errors(form, exc)
            return render_template("users/form.html", form=form), 422
        return show_link(user, ops.issue_link(get_db(), actor, user, datetime.now(UTC)))
    return render_template("users/form.html", form=form), status


def show_link(user: User, secret: str) -> Any:
    """The page that shows a new set-password link to copy; it is e-mailed too when SMTP is
    configured and the account has an address (after the link is committed)."""
    url = url_for("password_links.set_password", secret=secret, _external=True)
    get_db().commit()
    mailed = False
    settings = notices.SmtpSettings.from_config(current_app.config)
    if settings is not None and user.email:
        committee = get_db().get(Committee, user.committee_id)
        name = committee.name if committee else ""
        mailed = notices.send(settings, [ops.LinkMail(user.email, url).mail(name)]) == 1
    return render_template("users/link.html", user=user, url=url, mailed=mailed)


@bp.route("/<int:user_id>/link", methods=["POST"])
@login_required
def link(user_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    user, secret = ops.issue_link_for(get_db(), _manager(), user_id, datetime.now(UTC))
    return show_link(user, secret)


@bp.route("/<int:user_id>/active", methods=["POST"])
@login_required
def set_active(user_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    user = ops.set_user_active(get_db(), _manager(), user_id, active)
    if active:
        flash(_("Account '%(name)s' is active again.", name=user.username), "success")
    else:
        flash(_("Account '%(name)s' is deactivated; it is signed out.", name=user.username), "info")
    return redirect(url_for("users.index"))


@links.route("/password/<secret>", methods=["GET", "POST"])
def set_password(secret: str) -> Any:
    """Set a password through a one-time link (anyone holding it; signed-in or not)."""
    now = datetime.now(UTC)
    try:
        link = ops.open_link(get_db(), secret, now)
    except (NotFound, ValidationFailed) as exc:
        status = 404 if isinstance(exc, NotFound) else 410
        return render_template("users/set_password.html", form=None, problem=exc.message), status
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            user = ops.redeem_link(get_db(), secret, form.password.data or "", now)
        except ValidationFailed as exc:
            form.password.errors = [exc.fields.get("password", exc.message)]
            return render_template("users/set_password.html", form=form, user=link.user), 422
        done = _("Password set for %(name)s. Log in with it now.", name=user.username)
        return render_template("users/set_password.html", form=None, done=done)
    status = 422 if request.method == "POST" else 200
    return render_template("users/set_password.html", form=form, user=link.user), status
