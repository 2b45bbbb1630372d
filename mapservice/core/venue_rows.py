"""A venue as an import/export file holds it: the row, the errors found in a file, the
columns (from the venue spec) and the text helpers the reader, the validation and the writer
share. Pure: no Flask, no SQLAlchemy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mapservice.core import venue_spec
from mapservice.core.vocab import BookableBy


@dataclass
class VenueRow:
    """One venue as it appears in an import/export file (defaults: the venue spec's, checked
    by tests/test_venue_spec.py)."""

    name: str
    unit: str
    type: str
    lon: float
    lat: float
    crs: str = "wgs84"
    address: str = ""
    street: str = ""
    capacity_units: int = 1
    max_headcount: int | None = None
    facilities: str = ""
    phone: str = ""
    hours: str = ""
    slot_minutes: int = 60
    min_duration_minutes: int = 60
    max_duration_minutes: int = 240
    max_days_ahead: int = 30
    min_notice_minutes: int = 60
    requires_approval: bool = False
    bookable_by: str = BookableBy.MEMBERS.value
    weekly_quota_hours: int | None = None
    published: bool = True
    hold_hours: int = 48
    cancel_cutoff_minutes: int = 120
    row: int = 0


@dataclass(frozen=True)
class RowError:
    """One problem found in an import file; ``row`` 0 and ``field`` "" mean the whole file."""

    row: int
    field: str
    code: str
    params: dict[str, str]


#: The file's fields, in column order.
FILE_FIELDS: tuple[venue_spec.VenueField, ...] = venue_spec.on("import")
#: (English key, Chinese header), in file order.
COLUMNS: tuple[tuple[str, str], ...] = tuple((f.name, f.zh_header) for f in FILE_FIELDS)
KEYS: tuple[str, ...] = tuple(k for k, _ in COLUMNS)
ZH_HEADERS: dict[str, str] = dict(COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.name for f in FILE_FIELDS if f.required)
#: Other headers people write for a column, accepted like the export's own. Matching ignores
#: case, spaces, full-width brackets and a bracketed unit ("时段长度" = "时段长度(分钟)").
SYNONYMS: dict[str, tuple[str, ...]] = {f.name: f.synonyms for f in FILE_FIELDS if f.synonyms}
FORMATS: tuple[str, ...] = ("csv", "xlsx", "geojson")
#: Coordinates are rounded to this many decimal places on import.
COORD_DECIMALS = 7


def _norm_header(text: str) -> str:
    return (
        text.replace("\ufeff", "")
        .strip()
        .lower()
        .replace("（", "(")
        .replace("）", ")")
        .replace(" ", "")
    )


_HEADER_LOOKUP: dict[str, str] = {}
for _key, _zh in COLUMNS:
    for _name in (_key, _zh, *SYNONYMS.get(_key, ())):
        _HEADER_LOOKUP[_norm_header(_name)] = _key
        _HEADER_LOOKUP.setdefault(re.sub(r"\(.*\)$", "", _norm_header(_name)), _key)


def header_key(name: str) -> str | None:
    """The column a header names (the key, the Chinese header or a synonym), else None."""
    return _HEADER_LOOKUP.get(_norm_header(name))


def field_label(key: str, lang: str = "zh") -> str:
    """A column's name for messages: its Chinese header in Chinese, its key in English."""
    return key if lang.startswith("en") else ZH_HEADERS.get(key, key)


def accepted_headers() -> list[tuple[str, str, tuple[str, ...], bool]]:
    """Every column as (English key, Chinese header, other accepted headers, required), in
    file order: what the import page lists."""
    return [(k, zh, SYNONYMS.get(k, ()), k in REQUIRED_COLUMNS) for k, zh in COLUMNS]


def choice_label(enum: type[StrEnum], key: str) -> str:
    """A vocabulary key's Chinese label (the key itself if it has none)."""
    try:
        member = enum(key)
    except ValueError:
        return key
    label = getattr(member, "label", None)
    return str(label("zh")) if label is not None else key


# --------------------------------------------------------------------------------------------
# Formula-injection guard and cell text

_NEEDS_QUOTE = re.compile(r"^'*[=+\-@\t\r]")
_ADDED_QUOTE = re.compile(r"^'+[=+\-@\t\r]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def guard(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would read as a formula (reversible by ``unguard``)."""
    return "'" + text if _NEEDS_QUOTE.match(text) else text


def unguard(text: str) -> str:
    return text[1:] if _ADDED_QUOTE.match(text) else text


def show(value: object) -> str:
    """A short printable rendering of a raw cell value for messages: control characters and
    lone surrogates (which no page or terminal can print) become U+FFFD."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        text = str(int(value))
    else:
        try:
            text = str(value)
        except ValueError:  # an int of more than 4,300 digits
            text = "9" * 60
    text = text if len(text) <= 60 else text[:57] + "..."
    return _CONTROL.sub("\ufffd", text.replace("\n", " ").replace("\r", " "))


def clean_text(text: str, unguarded: bool) -> str:
    """Cell text as stored: line endings ``\\n``, control characters dropped, trimmed, and
    (``unguarded``) the exporter's formula quote removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text).strip()
    if unguarded:
        text = unguard(text)
    return text.strip()
