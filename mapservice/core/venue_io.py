"""Bulk import and export of venues as CSV, XLSX and GeoJSON.

Pure: no Flask, no SQLAlchemy. ``read_venues`` parses and validates a whole file and reports
*every* bad row (the caller enforces all-or-nothing and checks units, permissions and the
committee's region); it never raises on any input bytes. ``write_venues`` produces files that
open cleanly in Excel (UTF-8 BOM, Chinese headers in XLSX) and are safe against formula
injection: text cells starting with ``= + - @``, tab or CR get a leading ``'``, which the
importer strips again, so an exported file imports back unchanged.

Values are canonicalised on import (text trimmed, line endings normalised to ``\\n``, control
characters dropped; coordinates rounded to 7 decimals; hours in canonical form); the round
trip holds for canonical rows, i.e. anything ``read_venues`` returned.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from mapservice.core.hours import HoursError, day_name, format_hours, parse_hours
from mapservice.core.vocab import BookableBy, Crs, VenueType


@dataclass
class VenueRow:
    """One venue as it appears in an import/export file."""

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
    bookable_by: str = "members"
    weekly_quota_hours: int | None = None
    published: bool = True
    row: int = 0


@dataclass(frozen=True)
class RowError:
    """One problem found in an import file; ``row`` 0 and ``field`` "" mean the whole file."""

    row: int
    field: str
    code: str
    params: dict[str, str]


# --------------------------------------------------------------------------------------------
# Columns

#: (English key, Chinese header), in file order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "名称"),
    ("unit", "所属单位"),
    ("type", "类型"),
    ("lon", "经度"),
    ("lat", "纬度"),
    ("crs", "坐标系"),
    ("address", "地址"),
    ("street", "街道"),
    ("capacity_units", "可并行数量"),
    ("max_headcount", "最大人数"),
    ("facilities", "设施"),
    ("phone", "联系电话"),
    ("hours", "开放时间"),
    ("slot_minutes", "时段长度(分钟)"),
    ("min_duration_minutes", "最短时长(分钟)"),
    ("max_duration_minutes", "最长时长(分钟)"),
    ("max_days_ahead", "最多提前天数"),
    ("min_notice_minutes", "最少提前(分钟)"),
    ("requires_approval", "需要审批"),
    ("bookable_by", "可预约对象"),
    ("weekly_quota_hours", "每周限额(小时)"),
    ("published", "已发布"),
)
KEYS: tuple[str, ...] = tuple(k for k, _ in COLUMNS)
ZH_HEADERS: dict[str, str] = dict(COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = ("name", "unit", "type", "lon", "lat")
FORMATS: tuple[str, ...] = ("csv", "xlsx", "geojson")
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
#: Coordinates are rounded to this many decimal places on import.
COORD_DECIMALS = 7

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


def _norm_header(text: str) -> str:
    return (
        text.replace("\ufeff", "")
        .strip()
        .lower()
        .replace("（", "(")
        .replace("）", ")")
        .replace(" ", "")
    )


#: Other headers people write for a column, accepted like the export's own. Matching ignores
#: case, spaces, full-width brackets and a bracketed unit ("时段长度" = "时段长度(分钟)").
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("场地名称", "阵地名称", "名字"),
    "unit": ("单位", "成员单位", "单位名称"),
    "type": ("场地类型", "阵地类型", "类别"),
    "lon": ("longitude", "lng"),
    "lat": ("latitude",),
    "crs": ("坐标系统",),
    "address": ("详细地址", "场地地址"),
    "street": ("所属街道", "街道(乡镇)", "乡镇"),
    "capacity_units": ("数量", "场地数量", "并行数量"),
    "max_headcount": ("最多容纳人数", "容纳人数", "最大容纳人数", "可容纳人数", "最多人数"),
    "facilities": ("设施设备", "配套设施"),
    "phone": ("电话", "预约电话", "联系方式"),
    "hours": ("开放时段", "营业时间"),
    "requires_approval": ("是否审批", "需审批"),
    "bookable_by": ("预约对象",),
    "published": ("发布", "是否发布"),
}

_HEADER_LOOKUP: dict[str, str] = {}
for _key, _zh in COLUMNS:
    for _name in (_key, _zh, *SYNONYMS.get(_key, ())):
        _HEADER_LOOKUP[_norm_header(_name)] = _key
        _HEADER_LOOKUP.setdefault(re.sub(r"\(.*\)$", "", _norm_header(_name)), _key)


def field_label(key: str, lang: str = "zh") -> str:
    """A column's name for messages: its Chinese header in Chinese, its key in English."""
    return key if lang.startswith("en") else ZH_HEADERS.get(key, key)


def accepted_headers() -> list[tuple[str, str, tuple[str, ...], bool]]:
    """Every column as (English key, Chinese header, other accepted headers, required), in
    file order: what the import page lists."""
    return [(k, zh, SYNONYMS.get(k, ()), k in REQUIRED_COLUMNS) for k, zh in COLUMNS]


# --------------------------------------------------------------------------------------------
# Messages

_PREFIX: dict[str, tuple[str, str]] = {
    "row_field": ("第 {row} 行「{field}」：", "Row {row}, {field}: "),
    "row": ("第 {row} 行：", "Row {row}: "),
    "file": ("文件：", "File: "),
}

#: code -> (Chinese template, English template); placeholders come from ``RowError.params``.
MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("不能为空", "is required"),
    "too_long": (
        "不能超过 {max} 个字符，实际为 {length} 个",
        "must be at most {max} characters, got {length}",
    ),
    "not_text": ("必须是文字，实际为「{value}」", "must be text, got '{value}'"),
    "not_a_number": ("必须是数字，实际为「{value}」", "must be a number, got '{value}'"),
    "not_an_integer": (
        "必须是 {min} 到 {max} 之间的整数，实际为「{value}」",
        "must be a whole number from {min} to {max}, got '{value}'",
    ),
    "out_of_range": (
        "必须在 {min} 到 {max} 之间，实际为「{value}」",
        "must be from {min} to {max}, got '{value}'",
    ),
    "not_allowed": (
        "必须是以下之一：{allowed}，实际为「{value}」",
        "must be one of {allowed}, got '{value}'",
    ),
    "not_a_boolean": (
        "必须是「是」或「否」（true/false），实际为「{value}」",
        "must be yes or no (true/false), got '{value}'",
    ),
    "unknown_type": (
        "「{value}」不是已知的场地类型，可选：{choices}",
        "'{value}' is not a known venue type; choose from: {choices}",
    ),
    "unknown_crs": (
        "「{value}」不是已知的坐标系，可选：{choices}",
        "'{value}' is not a known coordinate system; choose from: {choices}",
    ),
    "unknown_bookable_by": (
        "「{value}」不是已知的可预约对象，可选：{choices}",
        "'{value}' is not a known bookable-by value; choose from: {choices}",
    ),
    "bad_phone": (
        "只能包含数字、空格、+、-、括号，长度 3 到 30 个字符，实际为「{value}」",
        "may contain only digits, spaces, +, - and parentheses, 3 to 30 characters, got '{value}'",
    ),
    "bad_hours": (
        "开放时间格式不正确（{reason}：「{detail}」），实际为「{value}」；"
        "示例：周一-周五 09:00-21:00; 周六,周日 08:00-12:00",
        "opening hours are not valid ({reason}: '{detail}'), got '{value}'; "
        "example: Mon-Fri 09:00-21:00; Sat,Sun 08:00-12:00",
    ),
    "not_multiple_of_slot": (
        "必须是时段长度 {slot} 分钟的整数倍，实际为「{value}」",
        "must be a multiple of the {slot}-minute slot, got '{value}'",
    ),
    "max_below_min": (
        "不能小于最短时长 {min} 分钟，实际为「{value}」",
        "must not be less than the minimum duration of {min} minutes, got '{value}'",
    ),
    "bad_geometry": (
        "几何必须是点（Point），坐标为 [经度, 纬度]",
        "geometry must be a Point with coordinates [longitude, latitude]",
    ),
    "extra_cells": (
        "第 {column} 列有内容但没有表头",
        "column {column} has a value but no header",
    ),
    "duplicate_name": (
        "单位「{unit}」已有同名场地「{value}」（第 {first_row} 行）",
        "unit '{unit}' already has a venue named '{value}' (row {first_row})",
    ),
    "unknown_column": (
        "无法识别的列：{columns}（请检查拼写，可用列：{allowed}）",
        "unknown columns: {columns} (check the spelling; allowed: {allowed})",
    ),
    "missing_column": ("缺少必需的列：{columns}", "required columns are missing: {columns}"),
    "duplicate_column": ("列重复：{columns}", "columns appear more than once: {columns}"),
    "unknown_format": (
        "不支持的文件类型「{value}」，请上传 .csv、.xlsx 或 .geojson 文件",
        "unsupported file type '{value}'; upload a .csv, .xlsx or .geojson file",
    ),
    "bad_encoding": (
        "无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV",
        "the file's text encoding is not recognised; save it as CSV in UTF-8 or GBK",
    ),
    "bad_csv": (
        "CSV 格式不正确（引号或分隔符不配对），请用 Excel 重新另存为 CSV",
        "the CSV is malformed (unbalanced quotes or separators); save it again as CSV",
    ),
    "cell_too_long": (
        "单元格内容过长（超过 {max} 个字符），可能是引号没有成对",
        "a cell is longer than {max} characters; perhaps a quote is not closed",
    ),
    "too_many_lines": (
        "文件行数过多（含空行超过 {max} 行），请删除多余的空行或拆分文件",
        "the file has too many lines (over {max}, blank lines included); "
        "delete the empty rows or split the file",
    ),
    "xlsx_too_large": (
        "Excel 文件解压后超过 {max} MB，可能已损坏；请另存为 CSV 或拆分文件",
        "the Excel file unpacks to more than {max} MB and may be damaged; "
        "save it as CSV or split it",
    ),
    "bad_json": (
        "不是有效的 GeoJSON 文件：第 {line} 行第 {column} 列附近有 JSON 语法错误",
        "not a valid GeoJSON file: JSON syntax error near line {line}, column {column}",
    ),
    "not_xlsx": (
        "不是有效的 Excel（.xlsx）文件，可能已损坏或是旧版 .xls 格式",
        "not a valid Excel (.xlsx) file; it may be damaged or in the old .xls format",
    ),
    "not_geojson": (
        "不是有效的 GeoJSON 文件（需要 FeatureCollection）：{detail}",
        "not a valid GeoJSON file (a FeatureCollection is required): {detail}",
    ),
    "empty_file": ("文件中没有场地数据", "the file contains no venues"),
    "too_many_rows": (
        "行数过多：每个文件最多 {max} 行场地数据，请拆分成多个文件分别导入",
        "too many rows: at most {max} venues per file; split it into several files",
    ),
}

#: HoursError codes -> (Chinese, English) reason.
_HOURS_REASONS: dict[str, tuple[str, str]] = {
    "bad_time": ("时间不正确", "bad time"),
    "bad_day": ("星期不正确", "bad day"),
    "bad_clause": ("缺少星期或时间", "missing days or times"),
    "bad_range": ("时间段不正确", "bad time range"),
    "end_before_start": ("结束时间早于开始时间", "end is not after start"),
    "overlap": ("时间段重叠", "overlapping ranges"),
}


#: not_geojson details -> (Chinese, English).
_GEOJSON_REASONS: dict[str, tuple[str, str]] = {
    "not_utf8": ("不是 UTF-8 文本", "not UTF-8 text"),
    "not_collection": ("顶层不是 FeatureCollection", "the top level is not a FeatureCollection"),
    "features_not_list": ("「features」不是列表", "'features' is not a list"),
    "too_deep": ("嵌套层数过多", "nested too deeply"),
}


_CHOICES: dict[str, type[StrEnum]] = {
    "unknown_type": VenueType,
    "unknown_crs": Crs,
    "unknown_bookable_by": BookableBy,
}


def message(err: RowError, lang: str = "zh") -> str:
    """The human message for ``err`` in Chinese (default) or English: columns and choices
    are named as the reader's language names them (所属单位 / unit, 羽毛球馆 / badminton)."""
    idx = 1 if lang.startswith("en") else 0
    sep = ", " if idx else "、"
    params: defaultdict[str, str] = defaultdict(str, err.params)
    params["row"] = str(err.row)
    params["field"] = field_label(err.field, lang)
    if err.code == "bad_hours" and "reason" in err.params:
        reason = _HOURS_REASONS.get(err.params["reason"])
        if reason is not None:
            params["reason"] = reason[idx]
        weekday = err.params.get("weekday", "")
        if weekday.isdigit() and int(weekday) < 7:
            params["detail"] = f"{day_name(int(weekday), lang)} {err.params.get('detail', '')}"
    if err.code in ("missing_column", "duplicate_column"):
        params["columns"] = sep.join(
            field_label(c.strip(), lang) for c in err.params.get("columns", "").split(",")
        )
    if err.code == "unknown_column":
        params["allowed"] = sep.join(field_label(k, lang) for k in KEYS)
    if err.code in _CHOICES:
        # English: the keys (as a CSV export writes them); Chinese: the labels. Both import.
        params["choices"] = sep.join(
            str(m.value) if idx else _choice_label(_CHOICES[err.code], str(m.value))
            for m in _CHOICES[err.code]
        )
    if err.code == "not_geojson":
        detail = _GEOJSON_REASONS.get(err.params.get("detail", ""))
        if detail is not None:
            params["detail"] = detail[idx]
    if err.row > 0 and err.field:
        prefix = _PREFIX["row_field"][idx]
    elif err.row > 0:
        prefix = _PREFIX["row"][idx]
    else:
        prefix = _PREFIX["file"][idx]
    template = MESSAGES.get(err.code, ("{code}", "{code}"))[idx]
    params.setdefault("code", err.code)
    try:
        return prefix.format_map(params) + template.format_map(params)
    except (ValueError, IndexError, KeyError, AttributeError):  # pragma: no cover - defensive
        return f"{prefix.format_map(params)}{err.code}"


# --------------------------------------------------------------------------------------------
# Formula-injection guard

_NEEDS_QUOTE = re.compile(r"^'*[=+\-@\t\r]")
_ADDED_QUOTE = re.compile(r"^'+[=+\-@\t\r]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _guard(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would read as a formula (reversible by ``_unguard``)."""
    return "'" + text if _NEEDS_QUOTE.match(text) else text


def _unguard(text: str) -> str:
    return text[1:] if _ADDED_QUOTE.match(text) else text


# --------------------------------------------------------------------------------------------
# Reading


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
        key = _HEADER_LOOKUP.get(_norm_header(name))
        if key is None:
            unknown.append(_show(name.strip()))
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
        errors.append(
            RowError(
                0,
                "",
                "unknown_column",
                {"columns": ", ".join(unknown), "allowed": ", ".join(KEYS)},
            )
        )
    return keys, errors


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
    return _validate_all(records, errors, unguard=True)


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
            errors.append(RowError(rownum, "", "not_text", {"value": _show(props)}))
            continue
        values: dict[str, object] = {}
        for name, value in props.items():
            key = _HEADER_LOOKUP.get(_norm_header(str(name)))
            if key is None:
                if _show(name) not in unknown:
                    unknown.append(_show(name))
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
        errors.insert(
            0,
            RowError(
                0,
                "",
                "unknown_column",
                {"columns": ", ".join(unknown), "allowed": ", ".join(KEYS)},
            ),
        )
    # GeoJSON is not opened by spreadsheets, so the exporter adds no quotes to strip.
    return _validate_all(records, errors, unguard=False)


# --------------------------------------------------------------------------------------------
# Validation


def _show(value: object) -> str:
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


def _validate_all(
    records: list[tuple[int, dict[str, object]]], errors: list[RowError], *, unguard: bool
) -> tuple[list[VenueRow], list[RowError]]:
    out: list[VenueRow] = []
    seen: dict[tuple[str, str], int] = {}
    for rownum, values in records:
        row, row_errors = _build_row(rownum, values, unguard)
        errors.extend(row_errors)
        name = values.get("name")
        unit = values.get("unit")
        if isinstance(name, str) and isinstance(unit, str):
            ident = (_clean_text(unit, unguard).casefold(), _clean_text(name, unguard).casefold())
            if ident[0] and ident[1]:
                if ident in seen:
                    errors.append(
                        RowError(
                            rownum,
                            "name",
                            "duplicate_name",
                            {
                                "value": _clean_text(name, unguard),
                                "unit": _clean_text(unit, unguard),
                                "first_row": str(seen[ident]),
                            },
                        )
                    )
                    continue
                seen[ident] = rownum
        if row is not None:
            out.append(row)
    errors.sort(key=lambda e: (e.row, KEYS.index(e.field) if e.field in KEYS else -1))
    bad_rows = {e.row for e in errors}
    return [r for r in out if r.row not in bad_rows], errors


def _clean_text(text: str, unguard: bool) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text).strip()
    if unguard:
        text = _unguard(text)
    return text.strip()


class _Row:
    """Collects parsed values and errors for one row."""

    def __init__(self, rownum: int, values: dict[str, object], unguard: bool) -> None:
        self.rownum = rownum
        self.unguard = unguard
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
            self.err(key, "not_text", value=_show(value))
            return None
        text = _clean_text(text, self.unguard)
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
                result = float(_unguard(value.strip()).replace(" ", ""))
        except (ValueError, OverflowError):
            result = None
        if result is None or not math.isfinite(result):
            self.err(key, "not_a_number", value=_show(value))
            return None
        if not lo <= result <= hi:
            self.err(key, "out_of_range", value=_show(value), min=_fmt_num(lo), max=_fmt_num(hi))
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
            text = _unguard(value.strip())
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
            self.err(key, "not_an_integer", value=_show(value), min=str(lo), max=str(hi))
            return None
        if not lo <= result <= hi:
            self.err(key, "out_of_range", value=_show(value), min=str(lo), max=str(hi))
            return None
        return result

    def choice_int(self, key: str, allowed: tuple[int, ...], default: int) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        result = self._int_value(value)
        if result is None or result not in allowed:
            self.err(key, "not_allowed", value=_show(value), allowed=", ".join(map(str, allowed)))
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
            text = _unguard(value.strip()).lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        self.err(key, "not_a_boolean", value=_show(value))
        return None

    def choice(self, key: str, enum: type[StrEnum], code: str, default: str) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, str):
            member = _parse_choice(enum, _unguard(value.strip()))
            if member is not None:
                return member
        self.err(key, code, value=_show(value), choices=", ".join(m.value for m in enum))
        return None


_TRUE = frozenset({"true", "1", "yes", "y", "是", "t", "1.0"})
_FALSE = frozenset({"false", "0", "no", "n", "否", "f", "0.0"})
_PHONE_RE = re.compile(r"^[0-9 +\-()]{3,30}$")
_SLOTS = (15, 30, 60, 120)


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


def _build_row(
    rownum: int, values: dict[str, object], unguard: bool
) -> tuple[VenueRow | None, list[RowError]]:
    r = _Row(rownum, values, unguard)
    name = r.text("name", required=True, max_len=120)
    unit = r.text("unit", required=True, max_len=120)
    vtype: str | None = None
    if r.raw("type") is None:
        r.err("type", "required")
    else:
        vtype = r.choice("type", VenueType, "unknown_type", "")
    lon = r.number("lon", -180.0, 180.0)
    lat = r.number("lat", -90.0, 90.0)
    crs = r.choice("crs", Crs, "unknown_crs", Crs.WGS84.value)
    address = r.text("address", max_len=200)
    street = r.text("street", max_len=120)
    capacity = r.integer("capacity_units", 1, 100, 1)
    headcount = r.integer("max_headcount", 1, 10000, None)
    facilities = r.text("facilities", max_len=2000)
    phone = r.text("phone", max_len=30)
    if phone and not _PHONE_RE.match(phone):
        r.err("phone", "bad_phone", value=_show(phone))
        phone = None
    hours_text = r.text("hours", max_len=1000)
    hours: str | None = hours_text
    if hours_text:
        try:
            hours = format_hours(parse_hours(hours_text))
        except HoursError as exc:
            r.err(
                "hours",
                "bad_hours",
                value=_show(hours_text),
                reason=exc.code,
                detail=exc.detail,
                weekday="" if exc.weekday is None else str(exc.weekday),
            )
            hours = None
    slot = r.choice_int("slot_minutes", _SLOTS, 60)
    min_dur = r.integer("min_duration_minutes", 15, 1440, 60)
    max_dur = r.integer("max_duration_minutes", 15, 1440, 240)
    if slot is not None and min_dur is not None and min_dur % slot:
        r.err("min_duration_minutes", "not_multiple_of_slot", value=str(min_dur), slot=str(slot))
        min_dur = None
    if slot is not None and max_dur is not None and max_dur % slot:
        r.err("max_duration_minutes", "not_multiple_of_slot", value=str(max_dur), slot=str(slot))
        max_dur = None
    if min_dur is not None and max_dur is not None and max_dur < min_dur:
        r.err("max_duration_minutes", "max_below_min", value=str(max_dur), min=str(min_dur))
        max_dur = None
    days_ahead = r.integer("max_days_ahead", 1, 365, 30)
    notice = r.integer("min_notice_minutes", 0, 10080, 60)
    approval = r.boolean("requires_approval", False)
    bookable = r.choice("bookable_by", BookableBy, "unknown_bookable_by", BookableBy.MEMBERS.value)
    quota = r.integer("weekly_quota_hours", 1, 168, None)
    published = r.boolean("published", True)
    if r.errors:
        return None, r.errors
    assert name is not None and unit is not None and vtype is not None
    assert lon is not None and lat is not None and crs is not None
    assert address is not None and street is not None and capacity is not None
    assert facilities is not None and phone is not None and hours is not None
    assert slot is not None and min_dur is not None and max_dur is not None
    assert days_ahead is not None and notice is not None and approval is not None
    assert bookable is not None and published is not None
    return (
        VenueRow(
            name=name,
            unit=unit,
            type=vtype,
            lon=lon,
            lat=lat,
            crs=crs,
            address=address,
            street=street,
            capacity_units=capacity,
            max_headcount=headcount,
            facilities=facilities,
            phone=phone,
            hours=hours,
            slot_minutes=slot,
            min_duration_minutes=min_dur,
            max_duration_minutes=max_dur,
            max_days_ahead=days_ahead,
            min_notice_minutes=notice,
            requires_approval=approval,
            bookable_by=bookable,
            weekly_quota_hours=quota,
            published=published,
            row=rownum,
        ),
        [],
    )


# --------------------------------------------------------------------------------------------
# Writing

_TEXT_FIELDS = frozenset({"name", "unit", "address", "street", "facilities", "phone", "hours"})
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _row_values(row: VenueRow) -> dict[str, object]:
    data = asdict(row)
    return {k: data[k] for k in KEYS}


def _choice_label(enum: type[StrEnum], key: str) -> str:
    try:
        member = enum(key)
    except ValueError:
        return key
    label = getattr(member, "label", None)
    return str(label("zh")) if label is not None else key


def write_venues(rows: Sequence[VenueRow], fmt: str) -> bytes:
    """Serialise venues as ``csv``, ``xlsx`` or ``geojson`` (ValueError on another fmt)."""
    if fmt == "csv":
        return _write_csv(rows)
    if fmt == "xlsx":
        return _write_xlsx(rows)
    if fmt == "geojson":
        return _write_geojson(rows)
    raise ValueError(f"unknown venue export format: {fmt!r}")


def _csv_cell(key: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return _guard(text) if key in _TEXT_FIELDS else text


def _write_csv(rows: Sequence[VenueRow]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(KEYS)
    for row in rows:
        values = _row_values(row)
        writer.writerow([_csv_cell(k, values[k]) for k in KEYS])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def _xlsx_cell(key: str, value: object) -> object:
    if value is None:
        return None
    if key == "type":
        return _choice_label(VenueType, str(value))
    if key == "bookable_by":
        return _choice_label(BookableBy, str(value))
    if key in ("requires_approval", "published"):
        return "是" if value else "否"
    if isinstance(value, str):
        text = _XLSX_ILLEGAL.sub("", value)
        return _guard(text) if key in _TEXT_FIELDS else text
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


def _write_geojson(rows: Sequence[VenueRow]) -> bytes:
    features: list[dict[str, object]] = []
    for row in rows:
        values = _row_values(row)
        props = {k: v for k, v in values.items() if k not in ("lon", "lat")}
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [row.lon, row.lat]},
                "properties": props,
            }
        )
    # One feature per line: compact for big exports, still readable and diffable.
    body = ",\n".join(json.dumps(f, ensure_ascii=False) for f in features)
    return ('{"type": "FeatureCollection", "features": [\n' + body + "\n]}\n").encode("utf-8")


__all__ = [
    "COLUMNS",
    "FORMATS",
    "KEYS",
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
