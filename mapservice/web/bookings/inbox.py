"""In-app notifications (and their e-mail, sent after the transaction that wrote them
commits) and iCalendar feeds of a group's or a venue's bookings."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import event, false, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from mapservice.booking import feeds, notices
from mapservice.core.errors import NotFound
from mapservice.core.i18n import _
from mapservice.core.ids import as_id
from mapservice.models import Booking, Group, Notification, User, Venue
from mapservice.policy import venues_run_by
from mapservice.web.auth import current_actor
from mapservice.web.bookings.common import _actor, _now, bp
from mapservice.web.database import get_db
from mapservice.web.forms import EmptyForm


def notifications_condition(actor: User) -> ColumnElement[bool]:
    """Notices are for a group (its bookers and its unit's secretaries read them) or for a
    unit (a new request to one of its venues: its secretaries read it)."""
    if actor.is_booker:
        return Notification.group_id.in_(sorted(actor.group_ids))
    if actor.is_secretary:
        return or_(
            Notification.unit_id == actor.unit_id,
            Notification.group_id.in_(select(Group.id).where(Group.unit_id == actor.unit_id)),
        )
    return false()


def unread_count() -> int:
    actor = current_actor()
    if actor is None or actor.is_admin:
        return 0
    return int(
        get_db().scalar(
            select(func.count(Notification.id)).where(
                notifications_condition(actor), Notification.read_at.is_(None)
            )
        )
        or 0
    )


@bp.route("/notifications")
@login_required
def notifications() -> Any:
    actor = _actor()
    db = get_db()
    notes = list(
        db.scalars(
            select(Notification)
            .where(notifications_condition(actor))
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(100)
        )
    )
    bookings = {
        b.id: b
        for b in db.scalars(
            select(Booking)
            .where(Booking.id.in_({n.booking_id for n in notes if n.booking_id}))
            .options(selectinload(Booking.venue).selectinload(Venue.committee))
        )
    }
    rows = [
        (n, notices.notice_text(n.kind, n.params, notices.notification_tz(n, bookings)))
        for n in notes
    ]
    tz = ZoneInfo(actor.committee.timezone)
    return render_template("bookings/notifications.html", rows=rows, tz=tz, button_form=EmptyForm())


@bp.route("/notifications/read", methods=["POST"])
@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@login_required
def mark_read(notification_id: int | None = None) -> Any:
    actor = _actor()
    if not EmptyForm().validate_on_submit():
        abort(400)
    db = get_db()
    stmt = select(Notification).where(notifications_condition(actor))
    if notification_id is not None:
        # One notice: through the same scoped query; someone else's is not there (404).
        note = db.scalars(stmt.where(Notification.id == notification_id)).one_or_none()
        if note is None:
            raise NotFound("notification_not_found", _("No such notification."))
        notes = [note] if note.read_at is None else []
    else:
        notes = list(db.scalars(stmt.where(Notification.read_at.is_(None))))
    now = _now()
    for n in notes:
        n.read_at = now
    return redirect(url_for("bookings.notifications"), 303)


def _feed_choices(actor: User) -> tuple[list[Group], list[Venue]]:
    db = get_db()
    groups_stmt = select(Group).where(Group.committee_id == actor.committee_id)
    if actor.is_booker:
        groups_stmt = groups_stmt.where(Group.id.in_(sorted(actor.group_ids)))
    elif actor.is_secretary:
        groups_stmt = groups_stmt.where(Group.unit_id == actor.unit_id)
    groups = list(db.scalars(groups_stmt.order_by(Group.name)))
    venues = list(
        db.scalars(
            select(Venue).where(venues_run_by(actor), Venue.retired.is_(False)).order_by(Venue.name)
        )
    )
    return groups, venues


def _feeds_page(actor: User, status: int = 200, new_url: str | None = None) -> Any:
    db = get_db()
    groups, venues = _feed_choices(actor)
    tokens = feeds.tokens_of(db, actor)
    return render_template(
        "bookings/feeds.html",
        tokens=[(t, feeds.feed_title(db, t)) for t in tokens],
        groups=groups,
        venues=venues,
        new_url=new_url,
        button_form=EmptyForm(),
    ), status


@bp.route("/feeds/", methods=["GET", "POST"])
@login_required
def feeds_page() -> Any:
    actor = _actor()
    if request.method == "GET":
        return _feeds_page(actor)
    if not EmptyForm().validate_on_submit():
        abort(400)
    target = request.form.get("target", "")
    kind, _sep, raw_id = target.partition(":")
    target_id = as_id(raw_id)
    if kind not in ("venue", "group") or target_id is None:
        abort(400)
    token, secret = feeds.create_token(
        get_db(),
        actor,
        venue_id=target_id if kind == "venue" else None,
        group_id=target_id if kind == "group" else None,
    )
    url = url_for("bookings.feed", token=secret, _external=True)
    flash(_("Feed created. Copy its address now: it is shown only once."), "success")
    return _feeds_page(actor, 200, new_url=url)


@bp.route("/feeds/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_feed(token_id: int) -> Any:
    actor = _actor()
    if not EmptyForm().validate_on_submit():
        abort(400)
    feeds.revoke(get_db(), actor, token_id, _now())
    flash(_("Feed revoked: its address no longer works."), "success")
    return redirect(url_for("bookings.feeds_page"), 303)


@bp.route("/feeds/<token>.ics")
def feed(token: str) -> Any:
    db = get_db()
    found = feeds.resolve(db, token)
    if found is None:
        abort(404)
    body = feeds.calendar_bytes(db, found, _now())
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"},
    )


def _mail_on_commit(app: Flask) -> None:
    """E-mail the notices a transaction wrote, after it commits (never for a rolled-back
    one). Skipped entirely when no SMTP host is configured."""
    maker = app.extensions["db_write_sessionmaker"]
    reader = app.extensions["db_sessionmaker"]

    @event.listens_for(maker, "after_flush")
    def _collect(session: Session, _ctx: Any) -> None:
        ids = [o.id for o in session.new if isinstance(o, Notification)]
        if ids:
            session.info.setdefault("notice_ids", []).extend(ids)

    @event.listens_for(maker, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop("notice_ids", None)

    @event.listens_for(maker, "after_commit")
    def _send(session: Session) -> None:
        ids = session.info.pop("notice_ids", None)
        settings = notices.SmtpSettings.from_config(app.config)
        if not ids or settings is None:
            return
        with reader() as read:
            mails = notices.mails_for(read, ids, app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN"))
        notices.send(settings, mails)
