"""What a booking notice says, and sending it by e-mail.

The engine writes :class:`~mapservice.models.Notification` rows (kind + JSON params) inside
the booking's transaction; this module turns one into a translated sentence for the in-app
list, and, once the transaction has committed, into an e-mail to the group's bookers (a new
request: to the venue's unit secretaries) when SMTP is configured. Pure: no Flask; the edge
passes the settings.
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from mapservice.core.i18n import _, use_locale
from mapservice.models import Booking, Notification, User, Venue, user_groups

log = logging.getLogger(__name__)

KINDS = (
    "confirmed",
    "declined",
    "expired",
    "cancelled_by_owner",
    "new_request",
    "reminder",
    "request_digest",
)
#: An activity's notices to a signed-up group (``mapservice.operations.activities``): their
#: ``start`` is local time already, their ``venue`` the activity's place.
ACTIVITY_KINDS = (
    "activity_confirmed",
    "activity_promoted",
    "activity_changed",
    "activity_cancelled",
)


def _when(params: Mapping[str, Any], tz: ZoneInfo | None) -> str:
    raw = params.get("start")
    if not raw:
        return ""
    try:
        instant = datetime.fromisoformat(str(raw))
    except ValueError:
        return str(raw)
    if tz is not None:
        instant = instant.astimezone(tz)
    return instant.strftime("%Y-%m-%d %H:%M")


def notice_text(kind: str, params_json: str, tz: ZoneInfo | None = None) -> str:
    """The notice as one translated sentence in the current locale."""
    try:
        params: dict[str, Any] = json.loads(params_json or "{}")
    except ValueError:
        params = {}
    if kind == "request_digest":
        return _digest_text(params, tz)
    # Every sentence takes what it names of these (``%`` ignores the others).
    args = {
        "venue": str(params.get("venue", "")),
        "when": _when(params, tz),
        "reason": str(params.get("reason", "")).strip() or "—",
        "kind": kind,
        "title": str(params.get("title", "")),
        "group": str(params.get("group", "")),
        "caller": str(params.get("caller", "")),
        "phone": str(params.get("phone", "")),
        "count": params.get("count", 1),
    }
    if kind in ACTIVITY_KINDS:
        return _activity_text(kind, args)
    if kind == "new_request":
        if args["count"] != 1:
            text = _(
                "New request for %(venue)s: %(count)s dates from %(when)s, for %(group)s.", **args
            )
        else:
            text = _("New request for %(venue)s on %(when)s, for %(group)s.", **args)
        if args["caller"] or args["phone"]:
            text += " " + _("Caller: %(caller)s, %(phone)s.", **args)
        return text
    if kind == "confirmed":
        return _("Your booking of %(venue)s on %(when)s is confirmed.", **args)
    if kind == "declined":
        return _("Your request for %(venue)s on %(when)s was declined: %(reason)s", **args)
    if kind == "expired":
        return _(
            "Your request for %(venue)s on %(when)s expired: the venue's unit did not answer.",
            **args,
        )
    if kind == "cancelled_by_owner":
        return _(
            "The venue's unit cancelled your booking of %(venue)s on %(when)s: %(reason)s", **args
        )
    if kind == "reminder":
        return _("Reminder: your booking of %(venue)s is on %(when)s.", **args)
    return _("Booking %(venue)s on %(when)s: %(kind)s", **args)


def _activity_text(kind: str, args: dict[str, str]) -> str:
    if kind == "activity_confirmed":
        return _("Your sign-up for %(title)s (%(venue)s, %(when)s) is confirmed.", **args)
    if kind == "activity_promoted":
        return _(
            "A place came free: your sign-up for %(title)s (%(venue)s, %(when)s) moved from"
            " the waitlist to confirmed.",
            **args,
        )
    if kind == "activity_changed":
        return _("%(title)s changed: now %(venue)s, %(when)s.", **args)
    return _("%(title)s (%(venue)s, %(when)s) was cancelled: %(reason)s", **args)


def _digest_text(params: Mapping[str, Any], tz: ZoneInfo | None) -> str:
    """The hourly digest (:mod:`mapservice.operations.digest`): a line saying how many new
    requests wait, one line per request (a series' dates are one), and where to decide them."""
    items = [i for i in params.get("items", []) if isinstance(i, Mapping)]
    if tz is None and params.get("tz"):  # no booking to take the venue's zone from
        try:
            tz = ZoneInfo(str(params["tz"]))
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
    count = params.get("count", len(items))
    lines = [_("New requests waiting for your approval: %(count)s", count=count)]
    for item in items:
        args = {
            "venue": str(item.get("venue", "")),
            "when": _when(item, tz),
            "group": str(item.get("group", "")),
            "count": item.get("count", 1),
        }
        if args["count"] != 1:
            lines.append(_("- %(venue)s: %(count)s dates from %(when)s, for %(group)s", **args))
        else:
            lines.append(_("- %(venue)s on %(when)s, for %(group)s", **args))
    if isinstance(count, int) and count > len(items):
        lines.append(_("… and %(n)s more", n=count - len(items)))
    url = str(params.get("url") or "")
    if url:
        lines.append(_("Approve or decline them here: %(url)s", url=url))
    else:
        lines.append(_("Approve or decline them on the Requests page."))
    return "\n".join(lines)


def notification_tz(n: Notification, bookings: Mapping[int, Booking]) -> ZoneInfo | None:
    booking = bookings.get(n.booking_id or 0)
    return ZoneInfo(booking.venue.committee.timezone) if booking is not None else None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    sender: str = "mapservice@localhost"
    starttls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings | None:
        """None when no SMTP host is configured (then notices stay in-app only)."""
        host = str(config.get("MAPSERVICE_SMTP_HOST") or "").strip()
        if not host:
            return None
        return cls(
            host=host,
            port=int(config.get("MAPSERVICE_SMTP_PORT") or 25),
            user=str(config.get("MAPSERVICE_SMTP_USER") or ""),
            password=str(config.get("MAPSERVICE_SMTP_PASSWORD") or ""),
            sender=str(config.get("MAPSERVICE_SMTP_FROM") or "mapservice@localhost"),
            starttls=str(config.get("MAPSERVICE_SMTP_STARTTLS") or "") in ("1", "true", "yes"),
        )


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    body: str


def mails_for(session: Session, notification_ids: Sequence[int], locale: str) -> list[Mail]:
    """One e-mail per notification to those it is for that have an address: the active
    bookers of its group, or the active secretaries of its unit."""
    if not notification_ids:
        return []
    notes = list(
        session.scalars(
            select(Notification)
            .where(Notification.id.in_(notification_ids))
            .order_by(Notification.id)
        )
    )
    booking_ids = {n.booking_id for n in notes if n.booking_id}
    bookings = {
        b.id: b
        for b in session.scalars(
            select(Booking)
            .where(Booking.id.in_(booking_ids))
            .options(selectinload(Booking.venue).selectinload(Venue.committee))
        )
    }
    group_ids = {n.group_id for n in notes if n.group_id is not None}
    unit_ids = {n.unit_id for n in notes if n.unit_id is not None}
    addresses: dict[tuple[str, int | None], list[str]] = {}
    # A booker's groups are in ``user_groups``; a unit's secretaries have its ``unit_id``.
    for gid, uid, email in session.execute(
        select(user_groups.c.group_id, User.unit_id, User.email)
        .outerjoin(user_groups, User.id == user_groups.c.user_id)
        .where(
            or_(user_groups.c.group_id.in_(group_ids), User.unit_id.in_(unit_ids)),
            User.active.is_(True),
            User.email != "",
        )
    ):
        key = ("group", gid) if gid is not None else ("unit", uid)
        addresses.setdefault(key, []).append(email)
    out: list[Mail] = []
    with use_locale(locale):
        for n in notes:
            key = ("group", n.group_id) if n.group_id is not None else ("unit", n.unit_id)
            to = tuple(sorted(set(addresses.get(key, []))))
            if not to:
                continue
            text = notice_text(n.kind, n.params, notification_tz(n, bookings))
            # A header is one line: a digest's subject is its first line.
            first = text.splitlines()[0] if text else ""
            out.append(Mail(to, _("Venue booking: %(text)s", text=first)[:150], text))
    return out


def send(settings: SmtpSettings, mails: Iterable[Mail]) -> int:
    """Send ``mails`` over one SMTP connection; returns how many were accepted. A failure is
    logged, never raised: the booking itself has already been saved."""
    mails = list(mails)
    if not mails:
        return 0
    sent = 0
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.user:
                smtp.login(settings.user, settings.password)
            for mail in mails:
                msg = EmailMessage()
                msg["From"] = settings.sender
                msg["To"] = ", ".join(mail.to)
                msg["Subject"] = mail.subject
                msg.set_content(mail.body)
                smtp.send_message(msg)
                sent += 1
    except (OSError, smtplib.SMTPException):
        log.exception("sending booking notices by e-mail failed (%s sent)", sent)
    return sent
