"""The activity list as files: XLSX (openpyxl, text guarded as in ``stats/export``) and a
printable PDF drawn with the printed map's machinery (matplotlib, the CJK font of
``stats/fonts``, one figure at a time under its render lock, pages through ``PdfPages``)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from mapservice.core.i18n import _, current_locale, lang
from mapservice.operations.plans import PlanView, kind_label
from mapservice.stats.export import guard


def _state_label(state: str) -> str:
    return {
        "led": _("led"),
        "due": _("due"),
        "late": _("late"),
        "upcoming": _("upcoming"),
    }[state]


def period_label(kind: str, period: int) -> str:
    return _("Month %(n)s", n=period) if kind == "month" else _("Week %(n)s", n=period)


def _rows(view: PlanView) -> tuple[list[str], list[list[str]]]:
    head = [_("Period"), _("From"), _("To"), _("Lead unit"), _("Kind"), _("Title"), _("Standing")]
    rows = [
        [
            period_label(view.plan.period, t.entry.period),
            t.start.isoformat(),
            t.end.isoformat(),
            t.entry.unit.name,
            kind_label(t.entry.kind, lang()),
            t.entry.title,
            _state_label(t.standing.value)
            + (f" {t.entry.led_on.isoformat()}" if t.entry.led_on else ""),
        ]
        for t in view.turns
    ]
    return head, rows


def plan_xlsx(view: PlanView) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    head, rows = _rows(view)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = str(view.plan.year)
    ws.append([guard(view.plan.title)])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(head)
    for c in ws[2]:
        c.font = Font(bold=True)
    for row in rows:
        ws.append([guard(v) for v in row])
    for letter, width in zip("ABCDEFG", (10, 12, 12, 34, 14, 30, 16), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


_PER_PAGE = 34


def plan_pdf(view: PlanView) -> bytes:
    """The list on A4 landscape pages (title, date, one line per turn). Raises
    :class:`mapservice.stats.fonts.FontMissing` without a CJK font."""
    from mapservice.stats.fonts import RENDERED, drawn, use_cjk

    head, rows = _rows(view)
    cols = (0.02, 0.10, 0.20, 0.30, 0.58, 0.70, 0.88)
    use_cjk()
    key = RENDERED.key("plan", view.plan.title, str(view.today), current_locale(), head, rows)
    return drawn(lambda: RENDERED.get(key) or RENDERED.put(key, _plan_pdf(view, head, rows, cols)))


def _plan_pdf(
    view: PlanView, head: list[str], rows: list[list[str]], cols: tuple[float, ...]
) -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        chunks: Sequence[list[list[str]]] = [
            rows[i : i + _PER_PAGE] for i in range(0, max(len(rows), 1), _PER_PAGE)
        ]
        for n, chunk in enumerate(chunks, start=1):
            fig = Figure(figsize=(11.69, 8.27))
            fig.text(0.02, 0.96, view.plan.title, fontsize=16, weight="bold")
            fig.text(
                0.98,
                0.96,
                _("As of %(day)s · page %(n)s of %(m)s", day=view.today, n=n, m=len(chunks)),
                fontsize=9,
                ha="right",
            )
            y = 0.91
            for x, text in zip(cols, head, strict=True):
                fig.text(x, y, text, fontsize=9, weight="bold")
            for row in chunk:
                y -= 0.025
                for x, text in zip(cols, row, strict=True):
                    fig.text(x, y, text[:28], fontsize=8.5)
            pdf.savefig(fig)
    return buf.getvalue()
