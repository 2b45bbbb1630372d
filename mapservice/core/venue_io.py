"""Bulk import and export of venues as CSV, XLSX and GeoJSON.

Pure: no Flask, no SQLAlchemy. ``read_venues`` parses and validates a whole file and reports
*every* bad row (the caller enforces all-or-nothing and checks units, permissions and the
committee's region); it never raises on any input bytes. ``write_venues``
(``core/venue_export.py``) produces files that open cleanly in Excel and are safe against
formula injection; an exported file imports back unchanged.

Values are canonicalised on import (text trimmed, line endings normalised to ``\\n``, control
characters dropped; coordinates rounded to 7 decimals; hours in canonical form); the round
trip holds for canonical rows, i.e. anything ``read_venues`` returned.

The columns, their ranges and headers come from the venue spec (``core/venue_spec.py``);
the rows and columns live in ``core/venue_rows.py``, the checks of each row in
``core/venue_validate.py``, the messages in ``core/venue_messages.py``. This module reads the
files and re-exports the rest.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

from mapservice.core.venue_export import write_venues
from mapservice.core.venue_messages import MESSAGES, message
from mapservice.core.venue_rows import (
    COLUMNS,
    FORMATS,
    KEYS,
    REQUIRED_COLUMNS,
    SYNONYMS,
    ZH_HEADERS,
    RowError,
    VenueRow,
    accepted_headers,
    field_label,
    header_key,
    show,
)
from mapservice.core.venue_validate import validate_all

#: Venues per file. A district has hundreds of venues; a larger file is almost certainly a
#: mistake, and refusing it at once beats an import that runs into the request timeout.
MAX_ROWS = 5000
#: Physical lines or sheet rows read, blank ones included: bounds the work on a file of
#: millions of empty lines or an XLSX whose rows are numbered into the billions.
MAX_LINES = 100_000
#: Sheet columns read (the format has 22); cells further right are ignored.
MAX_XLSX_COLUMNS = 200
#: Total unpacked size of an XLSX archive. A real 5,000-venue export unpacks to about
#: 5 MB; a zip bomb would unpack to gigabytes (openpyxl reads shared strings into memory).
MAX_XLSX_UNPACKED = 64 * 1024 * 1024


class _FileError(Exception):
    """Internal: a file-level problem that stops reading."""

    def __init__(self, code: str, row: int = 0, **params: str) -> None:
        super().__init__(code)
        self.error = RowError(row, "", code, dict(params))


def read_venues(
    data: bytes, filename: str, *, max_rows: int = MAX_ROWS
) -> tuple[list[VenueRow], list[RowError]]:
    """Parse and validate a venue file; return the good rows and every error found.

    The format comes from the extension (.csv, .xlsx, .geojson/.json). Never raises, and the
    work is bounded by the size of ``data``: at most ``max_rows`` venues and ``MAX_LINES``
    lines are read, and an XLSX is refused before unpacking more than ``MAX_XLSX_UNPACKED``.
    """
    ext = filename.rsplit(".", 1)[-1].strip().lower() if "." in filename else ""
    try:
        if ext == "csv":
            return _read_tabular(_csv_rows(data), max_rows)
        if ext == "xlsx":
            return _read_xlsx(data, max_rows)
        if ext in ("geojson", "json"):
            return _read_geojson(data, max_rows)
        raise _FileError("unknown_format", value=ext or filename)
    except _FileError as exc:
        return [], [exc.error]
    except RecursionError:
        return [], [RowError(0, "", "not_geojson", {"detail": "too_deep"})]


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError:
            raise _FileError("bad_encoding") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _FileError("bad_encoding") from None
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _FileError("bad_encoding")


def _sniff_delimiter(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            counts = {d: line.count(d) for d in (",", ";", "\t")}
            best = max(counts, key=lambda d: counts[d])
            return best if counts[best] > counts[","] else ","
    return ","


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[object]]]:
    text = _decode(data).replace("\x00", "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    rownum = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            if "field limit" in str(exc):
                raise _FileError("cell_too_long", line, max=str(csv.field_size_limit())) from None
            raise _FileError("bad_csv", line) from None
        rownum += 1
        if rownum > MAX_LINES:
            raise _FileError("too_many_lines", max=str(MAX_LINES))
        yield rownum, list(record)


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[object]]]:
    # openpyxl raises many different exception types on damaged input; any of them means
    # "not a usable xlsx".
    try:
        import openpyxl

        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise _FileError("not_xlsx")
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # Declared sizes: zipfile stops (CRC error) at the declared size if a member lies.
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_XLSX_UNPACKED:
            raise _FileError("xlsx_too_large", max=str(MAX_XLSX_UNPACKED // (1024 * 1024)))
        wb = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_links=False
        )
    except _FileError:
        raise
    except Exception:
        raise _FileError("not_xlsx") from None
    try:
        if not wb.worksheets:
            raise _FileError("not_xlsx")
        ws = wb.worksheets[0]
        # The stored dimension may be wrong: too small, openpyxl would silently drop the rows
        # below it; huge (A1:XFD1048576), it would pad a million empty rows. Read what is there.
        ws.reset_dimensions()  # type: ignore[union-attr]
        rownum = 0
        for values in ws.iter_rows(max_col=MAX_XLSX_COLUMNS, values_only=True):
            rownum += 1
            if rownum > MAX_LINES:
                raise _FileError("too_many_lines", max=str(MAX_LINES))
            yield rownum, list(values)
    except _FileError:
        raise
    except Exception:
        raise _FileError("not_xlsx") from None
    finally:
        try:
            wb.close()
        except Exception:  # pragma: no cover - defensive
            pass


def _read_xlsx(data: bytes, max_rows: int) -> tuple[list[VenueRow], list[RowError]]:
    return _read_tabular(_xlsx_rows(data), max_rows)


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _blank_row(cells: list[object]) -> bool:
    return cells.count(None) == len(cells) or all(_is_blank(c) for c in cells)


def _map_headers(names: Sequence[str]) -> tuple[list[str | None], list[RowError]]:
    """Map header names to keys; report unknown, duplicate and missing columns."""
    keys: list[str | None] = []
    unknown: list[str] = []
    seen: dict[str, int] = {}
    dupes: list[str] = []
    for name in names:
        if not name.strip():
            keys.append(None)
            continue
        key = header_key(name)
        if key is None:
            unknown.append(show(name.strip()))
            keys.append(None)
            continue
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            dupes.append(key)
        keys.append(key)
    errors: list[RowError] = []
    missing = [k for k in REQUIRED_COLUMNS if k not in seen]
    if missing:
        errors.append(RowError(0, "", "missing_column", {"columns": ", ".join(missing)}))
    if dupes:
        errors.append(RowError(0, "", "duplicate_column", {"columns": ", ".join(dupes)}))
    if unknown:
        errors.append(_unknown_columns(unknown))
    return keys, errors


def _unknown_columns(names: list[str]) -> RowError:
    return RowError(
        0, "", "unknown_column", {"columns": ", ".join(names), "allowed": ", ".join(KEYS)}
    )


def _column_letter(index: int) -> str:
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _read_tabular(
    rows: Iterator[tuple[int, list[object]]], max_rows: int
) -> tuple[list[VenueRow], list[RowError]]:
    header: list[object] | None = None
    for _rownum, cells in rows:
        if not _blank_row(cells):
            header = cells
            break
    if header is None:
        raise _FileError("empty_file")
    names = ["" if c is None else str(c) for c in header]
    keys, errors = _map_headers(names)
    if any(e.code in ("missing_column", "duplicate_column") for e in errors):
        return [], errors

    records: list[tuple[int, dict[str, object]]] = []
    for rownum, cells in rows:
        if _blank_row(cells):
            continue
        if len(records) >= max_rows:
            raise _FileError("too_many_rows", max=str(max_rows))
        values: dict[str, object] = {}
        for i, cell in enumerate(cells):
            key = keys[i] if i < len(keys) else None
            if key is not None:
                values[key] = cell
            elif not _is_blank(cell) and (i >= len(names) or not names[i].strip()):
                errors.append(RowError(rownum, "", "extra_cells", {"column": _column_letter(i)}))
        records.append((rownum, values))
    if not records and not errors:
        raise _FileError("empty_file")
    return validate_all(records, errors, unguarded=True)


def _read_geojson(data: bytes, max_rows: int) -> tuple[list[VenueRow], list[RowError]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _FileError("not_geojson", detail="not_utf8") from None
    if not text.strip():
        raise _FileError("empty_file")
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _FileError("bad_json", line=str(exc.lineno), column=str(exc.colno)) from None
    except ValueError:  # e.g. an integer literal of more than 4,300 digits
        raise _FileError("not_geojson", detail="not_collection") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise _FileError("not_geojson", detail="not_collection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise _FileError("not_geojson", detail="features_not_list")
    if not features:
        raise _FileError("empty_file")
    if len(features) > max_rows:
        raise _FileError("too_many_rows", max=str(max_rows))

    errors: list[RowError] = []
    records: list[tuple[int, dict[str, object]]] = []
    unknown: list[str] = []
    present: set[str] = set()
    for index, feature in enumerate(features):
        rownum = index + 1
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            errors.append(RowError(rownum, "", "bad_geometry", {}))
            continue
        props = feature.get("properties")
        if props is None:
            props = {}
        if not isinstance(props, dict):
            errors.append(RowError(rownum, "", "not_text", {"value": show(props)}))
            continue
        values: dict[str, object] = {}
        for name, value in props.items():
            key = header_key(str(name))
            if key is None:
                if show(name) not in unknown:
                    unknown.append(show(name))
                continue
            if key in values:
                errors.append(RowError(rownum, "", "duplicate_column", {"columns": key}))
            values[key] = value
            present.add(key)
        geometry = feature.get("geometry")
        if geometry is not None or "lon" not in values or "lat" not in values:
            coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
            if (
                not isinstance(geometry, dict)
                or geometry.get("type") != "Point"
                or not isinstance(coords, list)
                or len(coords) < 2
            ):
                errors.append(RowError(rownum, "", "bad_geometry", {}))
                continue
            values["lon"], values["lat"] = coords[0], coords[1]
            present.update(("lon", "lat"))
        records.append((rownum, values))
    missing = [k for k in ("name", "unit", "type") if k not in present]
    if missing and records:
        return [], [RowError(0, "", "missing_column", {"columns": ", ".join(missing)})]
    if unknown:
        errors.insert(0, _unknown_columns(unknown))
    # GeoJSON is not opened by spreadsheets, so the exporter adds no quotes to strip.
    return validate_all(records, errors, unguarded=False)


__all__ = [
    "COLUMNS",
    "FORMATS",
    "KEYS",
    "MAX_ROWS",
    "MESSAGES",
    "REQUIRED_COLUMNS",
    "SYNONYMS",
    "ZH_HEADERS",
    "RowError",
    "VenueRow",
    "accepted_headers",
    "field_label",
    "message",
    "read_venues",
    "write_venues",
]
