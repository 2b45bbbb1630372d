"""Who sees the statistics, and the utilization table: the dashboard's figures for a period
of local days, as the API's ``/stats/utilization`` serves them.

Both surfaces cut their figures from :func:`mapservice.stats.report.utilization`; the
dashboard and the API alike count a period only up to now (``docs/stats.md``: a confirmed
booking still to come is not use), so they agree to the last capacity-hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mapservice.core.errors import NotAllowed
from mapservice.core.i18n import _
from mapservice.models import Committee, User
from mapservice.stats.frames import Scope
from mapservice.stats.periods import Period, period_for
from mapservice.stats.report import utilization


def stats_scope(actor: User) -> Scope:
    """The venues whose figures ``actor`` sees: a committee admin the committee's, a unit
    secretary its unit's; anyone else none (NotAllowed)."""
    if not actor.active or not (actor.is_admin or actor.is_secretary):
        raise NotAllowed("not_allowed", _("Only committee admins and unit secretaries see stats."))
    return Scope(actor.committee_id, None if actor.is_admin else actor.unit_id)


#: The figures of a row of the table, summed (hours, counts) or ratios of sums (rates).
HOURS = ("open_cap_hours", "booked_cap_hours", "realized_cap_hours", "shared_cap_hours")
COUNTS = ("venues", "bookings")
RATES = (
    "utilization",
    "realized_utilization",
    "sharing_rate",
    "no_show_rate",
    "cancellation_rate",
)


def served_row(key: Any, name: Any, figures: dict[str, Any]) -> dict[str, str | int | float]:
    """A row of the figures as served: hours to the thousandth, rates at most 1, no NaN."""

    def num(col: str) -> float:
        value = figures.get(col, 0.0)
        return 0.0 if value is None or value != value else float(value)  # NaN → 0

    row: dict[str, str | int | float] = {"key": str(key), "name": str(name or "")}
    row.update({c: int(num(c)) for c in COUNTS})
    row.update({c: round(num(c), 3) for c in HOURS})
    row.update({c: min(1.0, num(c)) for c in RATES})
    return row


@dataclass(frozen=True)
class UtilizationTable:
    period: Period
    group_by: str
    total: dict[str, str | int | float]
    rows: list[dict[str, str | int | float]]


def utilization_table(
    session: Session,
    actor: User,
    first_day: date,
    last_day: date,
    group_by: str = "venue",
    *,
    now: datetime | None = None,
) -> UtilizationTable:
    """Utilization and sharing of the venues ``actor`` sees over the local days
    ``first_day``..``last_day`` counted up to ``now`` (default: the current time), as the
    dashboard counts (:meth:`Period.until`): open hours and bookings still to come are not
    counted, so a future confirmed booking is not use. Grouped by ``venue``, ``unit``,
    ``type`` or ``street``."""
    scope = stats_scope(actor)
    committee = session.get(Committee, actor.committee_id)
    assert committee is not None
    period = period_for("custom", first_day, ZoneInfo(committee.timezone), last_day=last_day)
    period = period.until(now if now is not None else datetime.now(UTC))
    # The API serves no lead time: the aggregates answer, not every booking of the period.
    used = utilization(session, scope, period, group_by, lead_times=False)
    rows = [served_row(r["key"], r.get("name", ""), r) for r in used.grouped.to_dict("records")]
    return UtilizationTable(period, group_by, served_row("total", "", used.totals), rows)
