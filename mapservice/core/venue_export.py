"""Writing venues as CSV, XLSX and GeoJSON: files that open cleanly in Excel (UTF-8 BOM,
Chinese headers in XLSX) and are safe against formula injection (text cells starting with
``= + - @``, tab or CR get a leading ``'``, which the importer strips again, so an exported
file imports back unchanged)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict

from mapservice.core.venue_rows import (
    COLUMNS,
    FILE_FIELDS,
    KEYS,
    VenueRow,
    choice_label,
    guard,
)
from mapservice.core.vocab import BookableBy, VenueType

_TEXT_FIELDS = frozenset(f.name for f in FILE_FIELDS if f.kind == "text")
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WIDTHS: dict[str, int] = {
    "name": 24,
    "unit": 22,
    "type": 16,
    "lon": 12,
    "lat": 12,
    "crs": 12,
    "address": 32,
    "street": 14,
    "facilities": 30,
    "phone": 18,
    "hours": 36,
    "bookable_by": 14,
}


def _row_values(row: VenueRow) -> dict[str, object]:
    data = asdict(row)
    return {k: data[k] for k in KEYS}


#: The formats :func:`venue_chunks` writes a piece at a time.
STREAMED = ("csv", "geojson")


def write_venues(rows: Sequence[VenueRow], fmt: str) -> bytes:
    """Serialise venues as ``csv``, ``xlsx`` or ``geojson`` (ValueError on another fmt)."""
    if fmt in STREAMED:
        return b"".join(venue_chunks([rows], fmt))
    if fmt == "xlsx":
        return _write_xlsx(rows)
    raise ValueError(f"unknown venue export format: {fmt!r}")


def venue_chunks(batches: Iterable[Sequence[VenueRow]], fmt: str) -> Iterator[bytes]:
    """Venues as ``csv`` or ``geojson``, one piece per batch of rows (the header or the
    collection's opening first, its closing last): the same bytes as :func:`write_venues`,
    never the whole file at once. ValueError on another format, before any piece."""
    if fmt == "csv":
        return _csv_chunks(batches)
    if fmt == "geojson":
        return _geojson_chunks(batches)
    raise ValueError(f"unknown streamed venue export format: {fmt!r}")


def _csv_cell(key: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return guard(text) if key in _TEXT_FIELDS else text


def _csv_chunks(batches: Iterable[Sequence[VenueRow]]) -> Iterator[bytes]:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(KEYS)
    yield b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")
    for rows in batches:
        buf.seek(0)
        buf.truncate()
        for row in rows:
            values = _row_values(row)
            writer.writerow([_csv_cell(k, values[k]) for k in KEYS])
        yield buf.getvalue().encode("utf-8")


def _xlsx_cell(key: str, value: object) -> object:
    if value is None:
        return None
    if key == "type":
        return choice_label(VenueType, str(value))
    if key == "bookable_by":
        return choice_label(BookableBy, str(value))
    if key in ("requires_approval", "published"):
        return "是" if value else "否"
    if isinstance(value, str):
        text = _XLSX_ILLEGAL.sub("", value)
        return guard(text) if key in _TEXT_FIELDS else text
    return value


def _write_xlsx(rows: Sequence[VenueRow]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "场地"
    ws.append([zh for _, zh in COLUMNS])
    bold = Font(bold=True)
    for cell in ws[1]:
        cell.font = bold
        cell.alignment = Alignment(vertical="center")
    for row in rows:
        values = _row_values(row)
        ws.append([_xlsx_cell(k, values[k]) for k in KEYS])
    last = max(len(rows) + 1, 2)
    for i, (key, zh) in enumerate(COLUMNS, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = max(_WIDTHS.get(key, 10), len(zh) * 2 + 2)
        if key in ("hours", "facilities", "address"):
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    # Drop-down lists for the closed vocabularies (help for hand editing; import is lenient).
    lists = {
        "type": [m.label("zh") for m in VenueType],
        "bookable_by": [m.label("zh") for m in BookableBy],
        "requires_approval": ["是", "否"],
        "published": ["是", "否"],
    }
    for key, options in lists.items():
        formula = '"' + ",".join(options) + '"'
        if len(formula) > 255:  # pragma: no cover - Excel's limit for inline lists
            continue
        dv = DataValidation(type="list", formula1=formula, allow_blank=True)
        dv.showErrorMessage = False
        letter = get_column_letter(KEYS.index(key) + 1)
        dv.add(f"{letter}2:{letter}{max(last, 1000)}")
        ws.add_data_validation(dv)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _feature(row: VenueRow) -> str:
    values = _row_values(row)
    props = {k: v for k, v in values.items() if k not in ("lon", "lat")}
    return json.dumps(
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [row.lon, row.lat]},
            "properties": props,
        },
        ensure_ascii=False,
    )


def _geojson_chunks(batches: Iterable[Sequence[VenueRow]]) -> Iterator[bytes]:
    # One feature per line: compact for big exports, still readable and diffable.
    yield b'{"type": "FeatureCollection", "features": [\n'
    first = True
    for rows in batches:
        if not rows:
            continue
        body = ",\n".join(_feature(row) for row in rows)
        yield (body if first else ",\n" + body).encode("utf-8")
        first = False
    yield b"\n]}\n"
