"""Read the printed one map back: every piece of text of a PDF with its box on its page
(pdfminer.six), and the checks a person holding the print would make — every venue number in
the index on a page beside its venue's name, and map markers that do not cover each other."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LTChar
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage


@dataclass(frozen=True)
class Piece:
    """A run of characters set one after the other on one baseline at one size (one text
    object of matplotlib's output), with its box in points."""

    page: int
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float

    def overlaps(self, other: Piece, pad: float = 0.0) -> bool:
        return (
            self.page == other.page
            and self.x0 - pad < other.x1 + pad
            and other.x0 - pad < self.x1 + pad
            and self.y0 - pad < other.y1 + pad
            and other.y0 - pad < self.y1 + pad
        )


@dataclass(frozen=True)
class PdfText:
    pieces: list[Piece]
    #: (x0, y0, x1, y1) of each page's media box
    boxes: list[tuple[float, float, float, float]]

    def on_page(self, piece: Piece) -> bool:
        x0, y0, x1, y1 = self.boxes[piece.page]
        return x0 <= piece.x0 and piece.x1 <= x1 and y0 <= piece.y0 and piece.y1 <= y1


def _chars(node: Any) -> Iterator[LTChar]:
    if isinstance(node, LTChar):
        yield node
    elif hasattr(node, "__iter__"):
        for child in node:
            yield from _chars(child)


def read_pdf(data: bytes) -> PdfText:
    """Every character of the PDF (layout analysis off: content-stream order), joined into
    pieces where one character starts where the previous one ends on the same baseline."""
    pieces: list[Piece] = []
    boxes = []
    manager = PDFResourceManager()
    device = PDFPageAggregator(manager, laparams=None)  # no layout analysis: the raw characters
    interpreter = PDFPageInterpreter(manager, device)
    for number, source in enumerate(PDFPage.get_pages(io.BytesIO(data))):
        interpreter.process_page(source)
        page = device.get_result()
        boxes.append(tuple(page.bbox))
        run: list[LTChar] = []
        for char in _chars(page):
            last = run[-1] if run else None
            if (
                last is not None
                and abs(char.x0 - last.x1) < 0.25
                and abs(char.y0 - last.y0) < 0.25
                and abs(char.size - last.size) < 0.05
            ):
                run.append(char)
                continue
            if run:
                pieces.append(_piece(number, run))
            run = [char]
        if run:
            pieces.append(_piece(number, run))
    return PdfText(pieces, boxes)  # type: ignore[arg-type]


def _piece(page: int, run: list[LTChar]) -> Piece:
    return Piece(
        page,
        "".join(c.get_text() for c in run),
        min(c.x0 for c in run),
        min(c.y0 for c in run),
        max(c.x1 for c in run),
        max(c.y1 for c in run),
        run[0].size,
    )


def index_entries(text: PdfText, names: Sequence[str]) -> dict[int, tuple[Piece, Piece]]:
    """The index rows: a number followed on its baseline, as the next piece to its right, by
    the start of a venue's name (a long name may end in "…"). Number -> (number, name)."""
    by_line: dict[tuple[int, int], list[Piece]] = {}
    for p in text.pieces:
        by_line.setdefault((p.page, round(p.y0 * 4)), []).append(p)
    found: dict[int, tuple[Piece, Piece]] = {}
    for line in by_line.values():
        line.sort(key=lambda p: p.x0)
        for a, b in itertools.pairwise(line):
            if not a.text.isdigit() or b.x0 - a.x1 > 40 * a.size:
                continue
            stem = b.text.removesuffix("…")
            if any(n == b.text or (b.text.endswith("…") and n.startswith(stem)) for n in names):
                assert int(a.text) not in found, f"index entry {a.text} twice"
                found[int(a.text)] = (a, b)
    return found


def index_problems(text: PdfText, names: Sequence[str]) -> list[str]:
    """What a reader would miss: index numbers 1..N absent, off their page, or beside a name
    that is not a venue's (each venue listed once)."""
    entries = index_entries(text, names)
    n = len(names)
    problems = [f"#{i} is not in the index" for i in range(1, n + 1) if i not in entries]
    problems += [
        f"#{i} lies outside page {a.page + 1} ({a.x0:.0f}, {a.y0:.0f})"
        for i, (a, b) in sorted(entries.items())
        if not (text.on_page(a) and text.on_page(b))
    ]
    named = sorted(b.text for _a, b in entries.values())
    if len(set(named)) != len(named):
        problems.append("a venue is listed twice")
    return problems


def marker_pieces(text: PdfText, n: int, index_numbers: set[Piece]) -> list[Piece]:
    """The numbers 1..n on the map: number pieces that are not index entries."""
    return [
        p
        for p in text.pieces
        if p.text.isdigit() and 1 <= int(p.text) <= n and p not in index_numbers
    ]
