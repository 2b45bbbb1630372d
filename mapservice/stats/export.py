"""Tables as CSV (UTF-8 with BOM, opens in Excel) and XLSX, with Chinese headers.

Safe against formula injection: text a spreadsheet would read as a formula (``=``, ``+``,
``-``, ``@``, tab, CR first) gets a leading ``'``. Numbers stay numbers: rates as fractions
(formatted as percentages in XLSX), hours rounded to 0.01.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from mapservice.stats.report import Column, Table

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


#: Rows per chunk of a streamed CSV: a few hundred kB at most, whatever the table's size.
CHUNK_ROWS = 1000
#: Bytes per chunk when a written file is streamed.
FILE_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_XLSX_FORMATS = {"pct": "0.0%", "hours": "0.00", "float": "0.00", "days": "0.0"}


def written(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> Iterator[list[Any]]:
    """Rows of raw values (in ``columns``' order) as written, one at a time (see
    :func:`cell`)."""
    kinds = [c.kind for c in columns]
    for row in rows:
        yield [cell(v, k) for v, k in zip(row, kinds, strict=True)]


def _rows(table: Table) -> Iterator[list[Any]]:
    """The table's rows as written, one at a time (no list of the whole table)."""
    keys = [c.key for c in table.columns]
    return written(table.columns, table.frame[keys].itertuples(index=False, name=None))


def csv_chunks(
    header: Sequence[str], rows: Iterable[Sequence[Any]], chunk_rows: int | None = None
) -> Iterator[bytes]:
    """A CSV file (UTF-8 with BOM, CRLF) in pieces: the header first, then ``chunk_rows``
    rows per piece, so that a file of any length is never held whole. None is written
    empty; the values are written as given (guard text beforehand)."""
    chunk_rows = chunk_rows or CHUNK_ROWS
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    yield _BOM + buf.getvalue().encode("utf-8")
    buf.seek(0)
    buf.truncate()
    n = 0
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        n += 1
        if n == chunk_rows:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
            n = 0
    if n:
        yield buf.getvalue().encode("utf-8")


def table_csv_chunks(table: Table, chunk_rows: int | None = None) -> Iterator[bytes]:
    """The table as CSV (Chinese headers) in pieces of ``chunk_rows`` rows."""
    return csv_chunks([c.zh for c in table.columns], _rows(table), chunk_rows)


def write_csv(table: Table) -> bytes:
    """The table as one CSV file (the pieces of :func:`table_csv_chunks` joined)."""
    return b"".join(table_csv_chunks(table))


#: A sheet to write: its title, its columns and its rows of raw values (in the columns'
#: order; any iterable, read once).
Sheet = tuple[str, Sequence[Column], Iterable[Sequence[Any]]]


def save_sheets(sheets: Iterable[Sheet], target: str | Path | IO[bytes]) -> None:
    """One worksheet per sheet, written to ``target`` (a path or a binary file) with
    openpyxl's write-only workbook: rows go to the file as they are appended, so memory
    stays small whatever the sheets' length. Chinese headers in bold, frozen below them;
    values as :func:`cell` writes them, rates as percentages, hours to 0.01."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for i, (title, columns, rows) in enumerate(sheets):
        ws = wb.create_sheet(re.sub(r"[\[\]:*?/\\]", "", title)[:31] or f"Sheet{i + 1}")
        for j, col in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(j)].width = max(10, len(col.zh) * 2 + 2)
        ws.freeze_panes = "A2"
        header = []
        for col in columns:
            c = WriteOnlyCell(ws, value=col.zh)
            c.font = bold
            header.append(c)
        ws.append(header)
        formats = [_XLSX_FORMATS.get(col.kind) for col in columns]
        for row in written(columns, rows):
            out: list[Any] = []
            for value, fmt in zip(row, formats, strict=True):
                if fmt is None or value is None:
                    out.append(value)
                else:
                    c = WriteOnlyCell(ws, value=value)
                    c.number_format = fmt
                    out.append(c)
            ws.append(out)
    if not wb.worksheets:
        wb.create_sheet("Sheet1")
    wb.save(target)


def _sheets(tables: Sequence[Table], sheet_titles: Sequence[str] | None) -> Iterator[Sheet]:
    keys = [[c.key for c in t.columns] for t in tables]
    for i, table in enumerate(tables):
        title = sheet_titles[i] if sheet_titles else table.name
        yield title, table.columns, table.frame[keys[i]].itertuples(index=False, name=None)


def save_xlsx(
    tables: Sequence[Table],
    target: str | Path | IO[bytes],
    sheet_titles: Sequence[str] | None = None,
) -> None:
    """One sheet per table (titles default to the tables' names), see :func:`save_sheets`."""
    save_sheets(_sheets(tables, sheet_titles), target)


def write_xlsx(tables: Sequence[Table], sheet_titles: Sequence[str] | None = None) -> bytes:
    """The tables as one XLSX file in memory (see :func:`save_xlsx`)."""
    buf = io.BytesIO()
    save_xlsx(tables, buf, sheet_titles)
    return buf.getvalue()


def sheets_file(sheets: Iterable[Sheet]) -> Path:
    """The sheets written as XLSX to a new temporary file (see :func:`save_sheets`); the
    caller removes it (:func:`file_chunks` does, once read)."""
    fd, name = tempfile.mkstemp(prefix="mapservice-export-", suffix=".xlsx")
    os.close(fd)
    try:
        save_sheets(sheets, name)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def xlsx_file(tables: Sequence[Table], sheet_titles: Sequence[str] | None = None) -> Path:
    """The tables written as XLSX to a new temporary file (see :func:`sheets_file`)."""
    return sheets_file(_sheets(tables, sheet_titles))


def file_chunks(
    path: Path, chunk_size: int | None = None, *, remove: bool = True
) -> Iterator[bytes]:
    """The file's bytes in pieces; with ``remove``, the file is deleted once read or when the
    reader stops early (the generator closed)."""
    try:
        with path.open("rb") as fh:
            while block := fh.read(chunk_size or FILE_CHUNK):
                yield block
    finally:
        if remove:
            path.unlink(missing_ok=True)


def write_table(table: Table, fmt: str) -> bytes:
    if fmt == "csv":
        return write_csv(table)
    if fmt == "xlsx":
        return write_xlsx([table])
    raise ValueError(f"unknown table format {fmt!r}")
