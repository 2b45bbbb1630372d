"""Reading the audit log: the entries one may see (``policy.audit_entries_seen_by``),
filtered by who, action, object and time, a page at a time or all of them as CSV / XLSX; each
entry with what changed (before → after)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.core import venue_spec
from mapservice.core.dates import parse_day
from mapservice.core.errors import NotAllowed, ValidationFailed
from mapservice.core.i18n import N_, _, lang
from mapservice.core.vocab import (
    ApplicationStatus,
    BookableBy,
    BookingStatus,
    UnitKind,
    UnitStatus,
    VenueType,
    _Labelled,
)
from mapservice.models import AuditEntry, Committee, User

if TYPE_CHECKING:
    from mapservice.stats.report import Column

PER_PAGE = 50
#: At most this many entries in one export (narrow the filter for more).
EXPORT_MAX = 20000
FORMATS = ("csv", "xlsx")

#: The actions' names as people read them (others are shown as they are stored).
ACTIONS: dict[str, str] = {
    "venue.create": N_("Venue registered"),
    "venue.update": N_("Venue changed"),
    "venue.retire": N_("Venue retired"),
    "venue.reinstate": N_("Venue reinstated"),
    "venue.import": N_("Venues imported"),
    "closure.create": N_("Closure added"),
    "closure.delete": N_("Closure removed"),
    "unit.create": N_("Unit added"),
    "unit.update": N_("Unit changed"),
    "unit.status": N_("Unit admitted, suspended or reinstated"),
    "unit.apply": N_("Unit applied to join"),
    "unit.admit": N_("Application admitted"),
    "unit.decline": N_("Application declined"),
    "booking.create": N_("Booking made"),
    "booking.reschedule": N_("Booking moved"),
    "booking.confirm": N_("Booking confirmed"),
    "booking.decline": N_("Booking declined"),
    "booking.cancel": N_("Booking cancelled"),
    "booking.expire": N_("Request lapsed"),
    "booking.check_in": N_("Checked in"),
    "booking.no_show": N_("Marked no-show"),
    "committee.settings": N_("Settings changed"),
    "group.create": N_("Youth group created"),
    "group.update": N_("Youth group changed"),
    "group.suspend": N_("Youth group suspended"),
    "group.reactivate": N_("Youth group reactivated"),
    "user.create": N_("Account created"),
    "user.activate": N_("Account reactivated"),
    "user.deactivate": N_("Account deactivated"),
    "user.password_link": N_("Set-password link issued"),
    "user.set_password": N_("Password set through a link"),
    "user.change_password": N_("Password changed"),
    "user.update_contact": N_("Contact details changed"),
    "user.reset_password": N_("Password reset"),
    "user.end_sessions": N_("Logged out everywhere else"),
    "user.login_failures": N_("Repeated failed log-ins"),
    "user.groups": N_("Booker's groups changed"),
    "token.create": N_("API token created"),
    "token.revoke": N_("API token revoked"),
    "feed.create": N_("Calendar feed created"),
    "feed.revoke": N_("Calendar feed revoked"),
    "areas.load": N_("Boundaries loaded"),
}


#: The kinds of object as people read them.
KINDS: dict[str, str] = {
    "venue": N_("Venue"),
    "booking": N_("Booking"),
    "unit": N_("Unit"),
    "group": N_("Group"),
    "user": N_("Account"),
    "apitoken": N_("API token"),
    "feedtoken": N_("Calendar feed"),
    "committee": N_("Committee"),
}

#: Fields other than the venue's (whose labels come from the venue spec).
FIELDS: dict[str, str] = {
    "status": N_("Status"),
    "retired": N_("Retired"),
    "start_at": N_("Start"),
    "end_at": N_("End"),
    "name_en": N_("Name in English"),
    "kind": N_("Kind"),
    "secretary": N_("League secretary"),
    "timezone": N_("Time zone"),
    "print_title": N_("Title of the printed map"),
    "application": N_("Application"),
    "contact_name": N_("Contact person"),
    "email": N_("E-mail"),
    "venues_plan": N_("Venues it means to open"),
    "reason": N_("Reason"),
    "contact_phone": N_("Contact phone"),
    "contact_email": N_("E-mail"),
    "display_name": N_("Name"),
    "unit_id": N_("Member unit"),
    "username": N_("User name"),
    "account": N_("Account"),
    "role": N_("Role"),
    "application_id": N_("Application"),
    "venue": N_("Venue"),
    "group": N_("Youth group"),
    "start": N_("Start"),
    "end": N_("End"),
    "units": N_("Units"),
    "expires_at": N_("Expires"),
    "proxy": N_("Booked for a caller"),
    "groups": N_("Youth groups"),
    "group_id": N_("Youth group"),
    "venue_id": N_("Venue"),
}

#: Values shown by their vocabulary's label: (object kind or "", field) → vocabulary.
VOCABULARIES: dict[tuple[str, str], type[_Labelled]] = {
    ("booking", "status"): BookingStatus,
    ("unit", "status"): UnitStatus,
    ("unit", "kind"): UnitKind,
    ("unit", "application"): ApplicationStatus,
    ("", "type"): VenueType,
    ("", "bookable_by"): BookableBy,
}


def action_label(action: str) -> str:
    return _(ACTIONS[action]) if action in ACTIONS else action


def kind_label(kind: str) -> str:
    return _(KINDS[kind]) if kind in KINDS else kind


def field_label(name: str) -> str:
    spec = venue_spec.BY_NAME.get(name)
    if spec is not None:
        return _(spec.label)
    return _(FIELDS[name]) if name in FIELDS else name


def value_label(kind: str, name: str, value: Any) -> Any:
    """A stored code (a booking's status, a venue's type) as its label; else the value."""
    vocab = VOCABULARIES.get((kind, name)) or VOCABULARIES.get(("", name))
    if vocab is not None and isinstance(value, str):
        member = vocab.parse(value)
        if member is not None:
            return member.label(lang())
    return value


@dataclass(frozen=True)
class AuditFilter:
    """What to show: ``actor`` a user name (exact), ``action`` exact or a prefix ending in
    "." ("booking."), ``object_type``/``object_id``, ``since``/``until`` local days (both
    included)."""

    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: int | None = None
    since: date | None = None
    until: date | None = None
    page: int = 1

    def as_args(self) -> dict[str, str]:
        """The filter as query arguments (without the page), for links and exports."""
        values = {
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": "" if self.object_id is None else str(self.object_id),
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in values.items() if v}


def parse_filter(args: Any) -> AuditFilter:
    """The filter from query arguments (a mapping of strings); ValidationFailed naming every
    argument at fault."""
    errors: dict[str, str] = {}

    def text(key: str, limit: int) -> str:
        value = str(args.get(key) or "").strip()
        if len(value) > limit:
            errors[key] = _("At most %(n)s characters.", n=limit)
            return ""
        return value

    def day(key: str) -> date | None:
        value = str(args.get(key) or "").strip()
        if not value:
            return None
        try:
            return parse_day(value)
        except ValueError:
            errors[key] = _("'%(value)s' is not a date (YYYY-MM-DD).", value=value[:40])
            return None

    def number(key: str, default: int | None) -> int | None:
        value = str(args.get(key) or "").strip()
        if not value:
            return default
        if not value.isdigit() or int(value) < 1 or len(value) > 9:
            errors[key] = _("'%(value)s' is not a positive whole number.", value=value[:40])
            return default
        return int(value)

    flt = AuditFilter(
        actor=text("actor", 60),
        action=text("action", 40),
        object_type=text("object_type", 40).lower(),
        object_id=number("object_id", None),
        since=day("since"),
        until=day("until"),
        page=number("page", 1) or 1,
    )
    if flt.since and flt.until and flt.until < flt.since:
        errors["until"] = _("The end of the period is before its start.")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return flt


def _conditions(user: User, flt: AuditFilter, tz: ZoneInfo) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [policy.audit_entries_seen_by(user)]
    if flt.actor:
        conds.append(AuditEntry.actor_name == flt.actor)
    if flt.action:
        if flt.action.endswith("."):
            conds.append(AuditEntry.action.startswith(flt.action, autoescape=True))
        else:
            conds.append(AuditEntry.action == flt.action)
    if flt.object_type:
        conds.append(AuditEntry.object_type == flt.object_type)
    if flt.object_id is not None:
        conds.append(AuditEntry.object_id == flt.object_id)
    if flt.since:
        conds.append(AuditEntry.at >= datetime.combine(flt.since, time(), tz).astimezone(UTC))
    if flt.until:
        end = datetime.combine(flt.until + timedelta(days=1), time(), tz).astimezone(UTC)
        conds.append(AuditEntry.at < end)
    return conds


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Line:
    """One entry as shown: local time, the action's name, what changed."""

    entry: AuditEntry
    at: datetime
    action: str
    changes: list[Change]
    details: dict[str, Any]
    kind: str
    actor: str

    def changes_text(self) -> str:
        return "; ".join(f"{c.label}: {show(c.before)} → {show(c.after)}" for c in self.changes)

    def details_text(self) -> str:
        if not self.details:
            return ""
        return json.dumps(self.details, ensure_ascii=False, default=str, sort_keys=True)


def show(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(show(v) for v in value)
    return str(value)


def _line(entry: AuditEntry, tz: ZoneInfo) -> Line:
    kind = entry.object_type
    changes = [
        Change(k, field_label(k), value_label(kind, k, b), value_label(kind, k, a))
        for k, (b, a) in sorted(entry.changed().items())
    ]
    details = entry.detail_values()
    if not entry.changes:  # an older entry: its changes were read from these details
        for key in ("changed", "old", "new"):
            details.pop(key, None)
    return Line(
        entry,
        entry.at.astimezone(tz),
        action_label(entry.action),
        changes,
        details,
        kind_label(kind),
        entry.actor_name if entry.actor_id is not None else _("system"),
    )


@dataclass
class AuditPage:
    lines: list[Line]
    total: int
    page: int
    per_page: int = PER_PAGE
    actions: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def require_reader(user: User | None) -> User:
    if user is None or not policy.may_read_audit(user):
        raise NotAllowed(
            "audit_not_allowed",
            _("Only the committee admin and unit secretaries may read the audit log."),
        )
    return user


def _tz(session: Session, user: User) -> ZoneInfo:
    committee = session.get(Committee, user.committee_id)
    return ZoneInfo(committee.timezone if committee else "Asia/Shanghai")


def audit_page(
    session: Session, user: User | None, flt: AuditFilter, per_page: int = PER_PAGE
) -> AuditPage:
    """One page of the entries ``user`` may see under ``flt``, newest first."""
    reader = require_reader(user)
    tz = _tz(session, reader)
    conds = _conditions(reader, flt, tz)
    total = session.scalar(select(func.count(AuditEntry.id)).where(*conds)) or 0
    entries = session.scalars(
        select(AuditEntry)
        .where(*conds)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(per_page)
        .offset((flt.page - 1) * per_page)
    ).all()
    return AuditPage([_line(e, tz) for e in entries], total, flt.page, per_page)


def audit_lines(
    session: Session, user: User | None, flt: AuditFilter, limit: int = EXPORT_MAX
) -> list[Line]:
    """Every entry ``user`` may see under ``flt`` (at most ``limit``), newest first."""
    stmt, tz = export_select(session, user, flt, limit)
    return [_line(e, tz) for e in session.scalars(stmt).all()]


def export_select(
    session: Session, user: User | None, flt: AuditFilter, limit: int = EXPORT_MAX
) -> tuple[Select[AuditEntry], ZoneInfo]:
    """The entries ``user`` may see under ``flt`` (at most ``limit``, newest first) as a
    statement to run later (by another session: a streamed export), and the committee's time
    zone to show their times in. Refuses a user who may not read the log (NotAllowed)."""
    reader = require_reader(user)
    tz = _tz(session, reader)
    stmt = (
        select(AuditEntry)
        .where(*_conditions(reader, flt, tz))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return stmt, tz


#: The export's columns: key, Chinese header, English header.
EXPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("at", "时间", "Time"),
    ("actor", "操作人", "Who"),
    ("action", "操作", "Action"),
    ("object_type", "对象类型", "Object kind"),
    ("object_id", "对象编号", "Object id"),
    ("changes", "变更(前 → 后)", "Changes (before → after)"),
    ("details", "详情", "Details"),
)


#: Entries read at once by a streamed export.
EXPORT_BATCH = 1000


def export_columns() -> list[Column]:
    """The export's columns (object ids as numbers, the rest as text)."""
    from mapservice.stats.report import Column

    return [
        Column(k, zh, en, "int" if k == "object_id" else "text") for k, zh, en in EXPORT_COLUMNS
    ]


def export_rows(
    session: Session, stmt: Select[AuditEntry], tz: ZoneInfo, batch: int | None = None
) -> Iterator[list[Any]]:
    """The entries ``stmt`` selects (:func:`export_select`) as rows of
    :func:`export_columns`, read ``batch`` at a time: the same values as
    :func:`export_audit` writes, without a list of every entry."""
    for entry in session.scalars(stmt.execution_options(yield_per=batch or EXPORT_BATCH)):
        line = _line(entry, tz)
        yield [
            line.at.strftime("%Y-%m-%d %H:%M:%S"),
            line.actor,
            line.action,
            line.kind,
            entry.object_id,
            line.changes_text(),
            line.details_text(),
        ]


def export_audit(lines: list[Line], fmt: str) -> bytes:
    """The lines as CSV (UTF-8 with BOM) or XLSX, Chinese headers, local times."""
    import pandas as pd

    from mapservice.stats.export import write_table
    from mapservice.stats.report import Table

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    columns = export_columns()
    frame = pd.DataFrame(
        [
            {
                "at": line.at.strftime("%Y-%m-%d %H:%M:%S"),
                "actor": line.actor,
                "action": line.action,
                "object_type": line.kind,
                "object_id": line.entry.object_id,
                "changes": line.changes_text(),
                "details": line.details_text(),
            }
            for line in lines
        ],
        columns=[k for k, _zh, _en in EXPORT_COLUMNS],
    )
    frame["object_id"] = frame["object_id"].astype("object")
    return write_table(Table("audit", "audit", columns, frame), fmt)
