"""Weekly opening hours: a compact text form, its parser and its canonical printer.

The text form is what people type in a form field or a spreadsheet cell and what exports
write back, e.g. ``Mon-Fri 09:00-21:00; Sat,Sun 08:00-12:00,14:00-18:00``. Days may also be
written in Chinese (``周一-周五``). A day not named is closed. Ranges are half-open minutes
``[start, end)`` after midnight; ``24:00`` is allowed as an end. Ranges on one day must not
overlap (touching ranges are merged).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAY_KEYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: (Chinese, English) name of each weekday, 0 = Monday, for messages.
DAY_NAMES: tuple[tuple[str, str], ...] = (
    ("周一", "Monday"),
    ("周二", "Tuesday"),
    ("周三", "Wednesday"),
    ("周四", "Thursday"),
    ("周五", "Friday"),
    ("周六", "Saturday"),
    ("周日", "Sunday"),
)
_DAY_ALIASES: dict[str, int] = {}
for _i, _names in enumerate(
    [
        ("mon", "monday", "周一", "星期一", "一"),
        ("tue", "tuesday", "周二", "星期二", "二"),
        ("wed", "wednesday", "周三", "星期三", "三"),
        ("thu", "thursday", "周四", "星期四", "四"),
        ("fri", "friday", "周五", "星期五", "五"),
        ("sat", "saturday", "周六", "星期六", "六"),
        ("sun", "sunday", "周日", "星期日", "周天", "星期天", "日", "天"),
    ]
):
    for _n in _names:
        _DAY_ALIASES[_n] = _i

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


def day_name(weekday: int, lang: str = "zh") -> str:
    """The weekday's name (0 = Monday) in ``zh`` (周三) or ``en`` (Wednesday)."""
    return DAY_NAMES[weekday][1 if lang.startswith("en") else 0]


class HoursError(ValueError):
    """The text is not a valid weekly-hours description; ``code`` names what is wrong,
    ``detail`` the offending text and ``weekday`` (0 = Monday) the day it is on, when the
    fault belongs to one day (an overlap)."""

    def __init__(self, code: str, detail: str, weekday: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.weekday = weekday

    def where(self, lang: str = "zh") -> str:
        """The offending text, prefixed with its day's name in ``lang`` when it has one
        (``周三 11:00-14:00`` / ``Wednesday 11:00-14:00``)."""
        if self.weekday is None:
            return self.detail
        return f"{day_name(self.weekday, lang)} {self.detail}"


@dataclass(frozen=True, order=True)
class OpeningRange:
    """One opening range on one weekday (0 = Monday), minutes after midnight, half-open."""

    weekday: int
    start_min: int
    end_min: int


def _parse_time(text: str, *, allow_24: bool) -> int:
    m = _TIME_RE.match(text.strip())
    if not m:
        raise HoursError("bad_time", text.strip())
    h, mi = int(m.group(1)), int(m.group(2))
    if mi >= 60 or h > 24 or (h == 24 and (mi != 0 or not allow_24)):
        raise HoursError("bad_time", text.strip())
    return h * 60 + mi


def _parse_day(text: str) -> int:
    key = text.strip().lower().rstrip(".")
    if key not in _DAY_ALIASES:
        raise HoursError("bad_day", text.strip())
    return _DAY_ALIASES[key]


def _parse_days(text: str) -> list[int]:
    days: list[int] = []
    for part in re.split(r"[,，、]", text):
        part = part.strip()
        if not part:
            continue
        if "-" in part or "至" in part or "~" in part:
            a, b = re.split(r"-|至|~", part, maxsplit=1)
            start, end = _parse_day(a), _parse_day(b)
            span = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
            days.extend(span)
        else:
            days.append(_parse_day(part))
    if not days:
        raise HoursError("bad_day", text.strip())
    return days


def parse_hours(text: str) -> list[OpeningRange]:
    """Parse the text form into sorted, merged ranges; raise HoursError naming the fault."""
    per_day: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
    for clause in re.split(r"[;；\n]", text or ""):
        clause = clause.strip()
        if not clause:
            continue
        m = re.match(r"^(\S+)\s+(.+)$", clause)
        if not m:
            raise HoursError("bad_clause", clause)
        days = _parse_days(m.group(1))
        for rng in re.split(r"[,，]", m.group(2)):
            rng = rng.strip()
            if not rng:
                continue
            if rng.count("-") != 1:
                raise HoursError("bad_range", rng)
            a, b = rng.split("-")
            start, end = _parse_time(a, allow_24=False), _parse_time(b, allow_24=True)
            if end <= start:
                raise HoursError("end_before_start", rng)
            for d in days:
                per_day[d].append((start, end))
    out: list[OpeningRange] = []
    for d in range(7):
        merged: list[list[int]] = []
        for start, end in sorted(per_day[d]):
            if merged and start < merged[-1][1]:
                raise HoursError("overlap", f"{fmt_min(start)}-{fmt_min(end)}", weekday=d)
            if merged and start == merged[-1][1]:
                merged[-1][1] = end
            else:
                merged.append([start, end])
        out.extend(OpeningRange(d, s, e) for s, e in merged)
    return out


def fmt_min(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def day_text(ranges: list[OpeningRange], weekday: int) -> str:
    """The ranges of one weekday as ``09:00-12:00,14:00-18:00`` (empty when closed)."""
    return ",".join(
        f"{fmt_min(r.start_min)}-{fmt_min(r.end_min)}"
        for r in sorted(ranges)
        if r.weekday == weekday
    )


def format_hours(ranges: list[OpeningRange]) -> str:
    """Canonical text: consecutive weekdays with identical ranges are grouped (``Mon-Fri``)."""
    clauses: list[str] = []
    d = 0
    while d < 7:
        text = day_text(ranges, d)
        e = d
        while e + 1 < 7 and day_text(ranges, e + 1) == text:
            e += 1
        if text:
            days = DAY_KEYS[d] if d == e else f"{DAY_KEYS[d]}-{DAY_KEYS[e]}"
            clauses.append(f"{days} {text}")
        d = e + 1
    return "; ".join(clauses)


def weekly_minutes(ranges: list[OpeningRange]) -> int:
    """Open minutes in one week."""
    return sum(r.end_min - r.start_min for r in ranges)
