"""Validation of an import file's rows against the venue spec: every field's type and range
from ``core/venue_spec.py``, then the rules across fields (durations on the slot grid,
opening hours, a name once per unit). Reports every problem as a ``RowError``."""

from __future__ import annotations

import math
import re
from enum import StrEnum

from mapservice.core import venue_spec
from mapservice.core.hours import HoursError, format_hours, parse_hours
from mapservice.core.venue_rows import (
    COORD_DECIMALS,
    FILE_FIELDS,
    KEYS,
    RowError,
    VenueRow,
    clean_text,
    show,
    unguard,
)

_TRUE = frozenset({"true", "1", "yes", "y", "是", "t", "1.0"})
_FALSE = frozenset({"false", "0", "no", "n", "否", "f", "0.0"})


def _fmt_num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_choice(enum: type[StrEnum], text: str) -> str | None:
    parse = getattr(enum, "parse", None)
    if parse is not None:
        member = parse(text)
        if member is not None:
            return str(member.value)
    # Labels containing "-" (e.g. the Crs labels) are not matched by vocab's parse; compare
    # labels exactly (case-insensitive) here.
    needle = text.strip().casefold()
    for member in enum:
        label = getattr(member, "label", None)
        if label is None:
            continue
        if needle in (str(label("zh")).casefold(), str(label("en")).casefold()):
            return str(member.value)
    return None


class _Row:
    """Collects parsed values and errors for one row."""

    def __init__(self, rownum: int, values: dict[str, object], unguarded: bool) -> None:
        self.rownum = rownum
        self.unguarded = unguarded
        self.values = values
        self.errors: list[RowError] = []

    def err(self, field: str, code: str, **params: str) -> None:
        self.errors.append(RowError(self.rownum, field, code, params))

    def raw(self, key: str) -> object:
        value = self.values.get(key)
        if isinstance(value, str):
            stripped = value.strip()
            return None if not stripped else value
        return value

    def field(self, spec: venue_spec.VenueField) -> object:
        """The value of ``spec``'s cell, checked as the spec says; None on an error (and for
        an empty nullable number)."""
        key = spec.name
        if spec.kind == "text":
            text = self.text(key, required=spec.required, max_len=spec.max_length or 0)
            if text and spec.pattern and not re.match(spec.pattern, text):
                self.err(key, f"bad_{key}", value=show(text))
                return None
            return text
        if spec.kind == "float":
            lo, hi = spec.min, spec.max
            assert lo is not None and hi is not None
            return self.number(key, lo, hi)
        if spec.kind == "bool":
            return self.boolean(key, bool(spec.default))
        if spec.kind == "choice":
            assert spec.enum is not None
            if spec.required and self.raw(key) is None:
                self.err(key, "required")
                return None
            return self.choice(key, spec.enum, f"unknown_{key}", str(spec.default or ""))
        default = None if spec.nullable else spec.default
        assert default is None or isinstance(default, int)
        if spec.choices:
            assert default is not None
            return self.choice_int(key, spec.choices, default)
        return self.integer(key, *spec.int_bounds, default)

    def text(self, key: str, *, required: bool = False, max_len: int = 0) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                self.err(key, "required")
                return None
            return ""
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer():
            text = str(int(value))
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            self.err(key, "not_text", value=show(value))
            return None
        text = clean_text(text, self.unguarded)
        if required and not text:
            self.err(key, "required")
            return None
        if max_len and len(text) > max_len:
            self.err(key, "too_long", max=str(max_len), length=str(len(text)))
            return None
        return text

    def number(self, key: str, lo: float, hi: float) -> float | None:
        value = self.raw(key)
        if value is None:
            self.err(key, "required")
            return None
        result: float | None = None
        try:
            if isinstance(value, int | float) and not isinstance(value, bool):
                result = float(value)
            elif isinstance(value, str) and len(value) <= 100:
                result = float(unguard(value.strip()).replace(" ", ""))
        except (ValueError, OverflowError):
            result = None
        if result is None or not math.isfinite(result):
            self.err(key, "not_a_number", value=show(value))
            return None
        if not lo <= result <= hi:
            self.err(key, "out_of_range", value=show(value), min=_fmt_num(lo), max=_fmt_num(hi))
            return None
        # 7 decimals is ~1 cm; more is noise, and XLSX keeps only ~15 significant digits.
        return round(result, COORD_DECIMALS)

    def _int_value(self, value: object) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value) if math.isfinite(value) and value.is_integer() else None
        if isinstance(value, str):
            text = unguard(value.strip())
            if re.fullmatch(r"[+-]?\d{1,18}", text):
                return int(text)
            if re.fullmatch(r"[+-]?\d{1,18}\.0{0,20}", text):
                return int(text.split(".")[0])
        return None

    def integer(self, key: str, lo: int, hi: int, default: int | None) -> int | None:
        """Parse an int in [lo, hi]; empty gives ``default``. Returns None on error too."""
        value = self.raw(key)
        if value is None:
            return default
        result = self._int_value(value)
        if result is None:
            self.err(key, "not_an_integer", value=show(value), min=str(lo), max=str(hi))
            return None
        if not lo <= result <= hi:
            self.err(key, "out_of_range", value=show(value), min=str(lo), max=str(hi))
            return None
        return result

    def choice_int(self, key: str, allowed: tuple[int, ...], default: int) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        result = self._int_value(value)
        if result is None or result not in allowed:
            self.err(key, "not_allowed", value=show(value), allowed=", ".join(map(str, allowed)))
            return None
        return result

    def boolean(self, key: str, default: bool) -> bool | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = unguard(value.strip()).lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        self.err(key, "not_a_boolean", value=show(value))
        return None

    def choice(self, key: str, enum: type[StrEnum], code: str, default: str) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, str):
            member = _parse_choice(enum, unguard(value.strip()))
            if member is not None:
                return member
        self.err(key, code, value=show(value), choices=", ".join(m.value for m in enum))
        return None


def _check_hours(r: _Row, text: object) -> str | None:
    """Opening hours in canonical form, or None (an error recorded)."""
    if not isinstance(text, str) or not text:
        return None if text is None else ""
    try:
        return format_hours(parse_hours(text))
    except HoursError as exc:
        r.err(
            "hours",
            "bad_hours",
            value=show(text),
            reason=exc.code,
            detail=exc.detail,
            weekday="" if exc.weekday is None else str(exc.weekday),
        )
        return None


def _check_durations(r: _Row, out: dict[str, object]) -> None:
    """The durations on the slot grid, the maximum not below the minimum."""
    slot, min_dur, max_dur = (
        out["slot_minutes"],
        out["min_duration_minutes"],
        out["max_duration_minutes"],
    )
    if isinstance(slot, int) and isinstance(min_dur, int) and min_dur % slot:
        r.err("min_duration_minutes", "not_multiple_of_slot", value=str(min_dur), slot=str(slot))
        out["min_duration_minutes"] = min_dur = None
    if isinstance(slot, int) and isinstance(max_dur, int) and max_dur % slot:
        r.err("max_duration_minutes", "not_multiple_of_slot", value=str(max_dur), slot=str(slot))
        out["max_duration_minutes"] = max_dur = None
    if isinstance(min_dur, int) and isinstance(max_dur, int) and max_dur < min_dur:
        r.err("max_duration_minutes", "max_below_min", value=str(max_dur), min=str(min_dur))


def check_values(
    names: tuple[str, ...], values: dict[str, object]
) -> tuple[dict[str, object], list[RowError]]:
    """Some fields' values (text, numbers or booleans) checked as an import cell would be,
    the durations on the slot grid when all three are among them: the values parsed (an
    empty nullable number None) and the errors (row 0). Used for a committee's defaults."""
    r = _Row(0, values, False)
    out = {name: r.field(venue_spec.field(name)) for name in names}
    if {"slot_minutes", "min_duration_minutes", "max_duration_minutes"} <= set(names):
        _check_durations(r, out)
    return out, r.errors


def build_row(
    rownum: int, values: dict[str, object], unguarded: bool
) -> tuple[VenueRow | None, list[RowError]]:
    """One file row as a ``VenueRow``, or None and every error in it."""
    r = _Row(rownum, values, unguarded)
    out = {spec.name: r.field(spec) for spec in FILE_FIELDS}
    out["hours"] = _check_hours(r, out["hours"])
    _check_durations(r, out)
    if r.errors:
        return None, r.errors
    return VenueRow(**out, row=rownum), []  # type: ignore[arg-type]


def validate_all(
    records: list[tuple[int, dict[str, object]]], errors: list[RowError], *, unguarded: bool
) -> tuple[list[VenueRow], list[RowError]]:
    """Every record checked; a (unit, name) named twice is an error on the second row. The
    good rows of rows without any error, and all errors sorted by row and column."""
    out: list[VenueRow] = []
    seen: dict[tuple[str, str], int] = {}
    for rownum, values in records:
        row, row_errors = build_row(rownum, values, unguarded)
        errors.extend(row_errors)
        name = values.get("name")
        unit = values.get("unit")
        if isinstance(name, str) and isinstance(unit, str):
            clean_name, clean_unit = clean_text(name, unguarded), clean_text(unit, unguarded)
            ident = (clean_unit.casefold(), clean_name.casefold())
            if ident[0] and ident[1]:
                if ident in seen:
                    params = {
                        "value": clean_name,
                        "unit": clean_unit,
                        "first_row": str(seen[ident]),
                    }
                    errors.append(RowError(rownum, "name", "duplicate_name", params))
                    continue
                seen[ident] = rownum
        if row is not None:
            out.append(row)
    errors.sort(key=lambda e: (e.row, KEYS.index(e.field) if e.field in KEYS else -1))
    bad_rows = {e.row for e in errors}
    return [r for r in out if r.row not in bad_rows], errors
