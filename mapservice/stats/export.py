"""Tables as CSV (UTF-8 with BOM, opens in Excel) and XLSX, with Chinese headers.

Safe against formula injection: text a spreadsheet would read as a formula (``=``, ``+``,
``-``, ``@``, tab, CR first) gets a leading ``'``. Numbers stay numbers: rates as fractions
(formatted as percentages in XLSX), hours rounded to 0.01.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from typing import Any

from mapservice.stats.report import Table

_FORMULA = re.compile(r"^[=+\-@\t\r]")
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
FORMATS = ("csv", "xlsx")


def guard(text: str) -> str:
    """Quote text a spreadsheet would evaluate."""
    return "'" + text if _FORMULA.match(text) else text


def cell(value: Any, kind: str) -> Any:
    """A table value as written: numbers rounded by kind, text guarded, NaN empty."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if kind == "text":
        return guard(_XLSX_ILLEGAL.sub("", str(value)))
    if kind == "int":
        return int(value)
    if kind == "pct":
        return round(float(value), 4)
    return round(float(value), 2)


def _rows(table: Table) -> list[list[Any]]:
    return [[cell(rec[c.key], c.kind) for c in table.columns] for rec in table.records()]


def write_csv(table: Table) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c.zh for c in table.columns])
    for row in _rows(table):
        writer.writerow(["" if v is None else v for v in row])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def write_xlsx(tables: Sequence[Table], sheet_titles: Sequence[str] | None = None) -> bytes:
    """One sheet per table (titles default to the tables' names)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    first = True
    for i, table in enumerate(tables):
        ws = wb.active if first else wb.create_sheet()
        assert ws is not None
        first = False
        title = sheet_titles[i] if sheet_titles else table.name
        ws.title = re.sub(r"[\[\]:*?/\\]", "", title)[:31] or f"Sheet{i + 1}"
        ws.append([c.zh for c in table.columns])
        for c in ws[1]:
            c.font = Font(bold=True)
        for row in _rows(table):
            ws.append(row)
        for j, col in enumerate(table.columns, start=1):
            letter = get_column_letter(j)
            ws.column_dimensions[letter].width = max(10, len(col.zh) * 2 + 2)
            fmt = {"pct": "0.0%", "hours": "0.00", "float": "0.00", "days": "0.0"}.get(col.kind)
            if fmt:
                for (c,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                    c.number_format = fmt
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_table(table: Table, fmt: str) -> bytes:
    if fmt == "csv":
        return write_csv(table)
    if fmt == "xlsx":
        return write_xlsx([table])
    raise ValueError(f"unknown table format {fmt!r}")
