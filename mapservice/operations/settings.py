"""A committee's settings, kept by its admin on ``/settings``: its display name (Chinese and
English), its time zone, the printed map's title and the rules new venues start with.

The time zone is how local times are read and shown — opening hours, the booking grid, the
dashboard's days, the printed map's date, the audit log's times. Stored instants are UTC and
stay as they are: a booking keeps its instant, so after a change it is shown at its time in
the new zone; opening hours, being local wall-clock times, now mean the new zone's hours."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.core import venue_spec
from mapservice.core.errors import NotFound, ValidationFailed
from mapservice.core.i18n import N_, _, lang
from mapservice.core.venue_messages import field_message
from mapservice.core.venue_validate import check_values
from mapservice.models import Committee, User
from mapservice.models.audit import record

NAME_MAX = 200
TITLE_MAX = 200
DEFAULTS = venue_spec.COMMITTEE_DEFAULTS


def venue_defaults(committee: Committee | None) -> dict[str, Any]:
    """The rules a new venue of ``committee`` starts with: the venue spec's defaults, over
    them the committee's own (values the spec no longer allows are ignored)."""
    values: dict[str, Any] = {name: venue_spec.field(name).default for name in DEFAULTS}
    if committee is None:
        return values
    try:
        stored = json.loads(committee.venue_defaults or "{}")
    except ValueError:
        return values
    if not isinstance(stored, dict):
        return values
    checked, errors = check_values(DEFAULTS, {**values, **stored})
    if not errors:
        values.update(checked)
    return values


@dataclass(frozen=True)
class Settings:
    name: str
    name_en: str
    timezone: str
    print_title: str
    defaults: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, committee: Committee) -> Settings:
        return cls(
            committee.name,
            committee.name_en,
            committee.timezone,
            committee.print_title,
            venue_defaults(committee),
        )


#: The time zones offered (a committee created from the console may have another: it is
#: kept and offered too).
TIMEZONES: tuple[tuple[str, str], ...] = (
    ("Asia/Shanghai", N_("China Standard Time (UTC+8)")),
    ("Asia/Urumqi", N_("Xinjiang Time (UTC+6)")),
    ("Asia/Hong_Kong", N_("Hong Kong (UTC+8)")),
    ("Asia/Macau", N_("Macao (UTC+8)")),
    ("Asia/Taipei", N_("Taipei (UTC+8)")),
)


def timezones(current: str) -> list[tuple[str, str]]:
    """The zones offered, as (zone, label), ``current`` among them."""
    offered = [(zone, _(label)) for zone, label in TIMEZONES]
    if current not in dict(TIMEZONES):
        offered.append((current, current))
    return offered


def settings_of(session: Session, actor: User | None) -> tuple[Committee, Settings]:
    """The actor's committee and its settings (admin only: NotAllowed otherwise)."""
    admin = policy.require_committee_admin(actor)
    committee = session.get(Committee, admin.committee_id)
    if committee is None:
        raise NotFound("committee_not_found", _("No such committee."))
    return committee, Settings.of(committee)


def _errors(new: Settings) -> tuple[dict[str, str], dict[str, Any]]:
    errors: dict[str, str] = {}
    if not new.name.strip():
        errors["name"] = _("A name is required.")
    for key, value, limit in (
        ("name", new.name, NAME_MAX),
        ("name_en", new.name_en, NAME_MAX),
        ("print_title", new.print_title, TITLE_MAX),
    ):
        if len(value.strip()) > limit:
            errors[key] = _("At most %(n)s characters.", n=limit)
    try:
        ZoneInfo(new.timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = _("Unknown time zone '%(tz)s'.", tz=new.timezone[:60])
    unknown = sorted(set(new.defaults) - set(DEFAULTS))
    if unknown:
        errors["defaults"] = _("Unknown rule: %(names)s.", names=", ".join(unknown)[:200])
    checked, problems = check_values(DEFAULTS, {k: new.defaults.get(k) for k in DEFAULTS})
    for err in problems:
        errors.setdefault(err.field, field_message(err, lang()))
    return errors, checked


def save_settings(session: Session, actor: User | None, new: Settings) -> Committee:
    """Change the actor's committee's settings; ValidationFailed naming every field at fault,
    changing nothing. Audited with what changed."""
    committee, old = settings_of(session, actor)
    errors, defaults = _errors(new)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    after = Settings(
        new.name.strip(),
        new.name_en.strip(),
        new.timezone.strip(),
        new.print_title.strip(),
        defaults,
    )
    changes: dict[str, list[Any]] = {
        k: [getattr(old, k), getattr(after, k)]
        for k in ("name", "name_en", "timezone", "print_title")
        if getattr(old, k) != getattr(after, k)
    }
    changes.update(
        {k: [old.defaults[k], defaults[k]] for k in DEFAULTS if old.defaults[k] != defaults[k]}
    )
    if not changes:
        return committee
    committee.name, committee.name_en = after.name, after.name_en
    committee.timezone, committee.print_title = after.timezone, after.print_title
    committee.venue_defaults = json.dumps(defaults, sort_keys=True)
    record(
        session, actor, "committee.settings", committee, committee_id=committee.id, changes=changes
    )
    return committee
