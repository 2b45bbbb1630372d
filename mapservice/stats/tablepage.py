"""One page of a dashboard table, sorted by one of its columns: what ``/dashboard/table/<name>``
shows of a table too long for the dashboard itself (a city's ten thousand venues)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mapservice.core.errors import NotFound, ValidationFailed
from mapservice.core.i18n import _
from mapservice.stats.report import Table

PER_PAGE = 50
#: How many rows of each table the dashboard shows before linking to its own page.
DASHBOARD_ROWS = 20


@dataclass(frozen=True)
class TablePage:
    """Rows ``first``..``last`` (1-based, inclusive) of ``total``, sorted by ``sort``
    (None: the table's own order), descending when ``descending``."""

    table: Table
    rows: list[dict[str, Any]]
    page: int
    pages: int
    total: int
    per_page: int
    sort: str | None
    descending: bool

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * self.per_page, self.total)


def parse_page(text: str | None) -> int:
    """A page number as given in a link (empty: the first); ValidationFailed otherwise."""
    text = (text or "").strip()
    if not text:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise ValidationFailed(
            _("The page must be a whole number from 1."),
            {"page": _("Not a page: %(v)s", v=text[:20])},
        )
    return int(text)


def table_page(
    table: Table,
    page: int = 1,
    *,
    sort: str | None = None,
    descending: bool = False,
    per_page: int = PER_PAGE,
) -> TablePage:
    """Page ``page`` of ``table`` sorted by the column ``sort`` (empty cells last, ties in
    the table's own order). A column the table does not have is a ValidationFailed naming
    the ones it has; a page past the last is a NotFound saying how many there are."""
    keys = {c.key for c in table.columns}
    if sort and sort not in keys:
        raise ValidationFailed(
            _("This table cannot be sorted by '%(column)s'.", column=sort[:40]),
            {"sort": _("One of: %(columns)s", columns=", ".join(c.key for c in table.columns))},
        )
    total = len(table.frame)
    pages = max(1, -(-total // per_page))
    if page > pages:
        raise NotFound(
            "page_not_found",
            _(
                "There is no page %(page)s: this table has %(pages)s page(s).",
                page=page,
                pages=pages,
            ),
        )
    frame = table.frame
    if sort:
        # By the column's values, by position: a frame's index may share the column's name.
        values = frame[sort].reset_index(drop=True)
        order = values.sort_values(ascending=not descending, na_position="last", kind="mergesort")
        frame = frame.iloc[order.index.to_numpy()]
    start = (page - 1) * per_page
    window = frame.iloc[start : start + per_page]
    rows = Table(table.name, table.title, table.columns, window).records()
    return TablePage(table, rows, page, pages, total, per_page, sort or None, descending)
