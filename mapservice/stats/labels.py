"""Text that fits: widths of mixed Chinese and Latin text, wrapping and clipping it, and
placing labels on a map so that none covers another (the printed map's markers, the
dashboard's map panels). Pure: numpy only, no drawing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: How far a label may move from its point: this many rings, each 0.6 label heights apart.
MAX_RINGS = 28


def text_width(text: str) -> float:
    """Approximate width in ems: CJK characters one em, others about half."""
    return sum(1.0 if ord(c) > 0x2E80 else 0.6 for c in text)


def clip(text: str, ems: float) -> str:
    """``text`` cut to ``ems`` with an ellipsis if it is wider."""
    if text_width(text) <= ems:
        return text
    out = ""
    for c in text:
        if text_width(out + c) > ems - 1:
            return out + "…"
        out += c
    return out


def _tokens(text: str) -> list[str]:
    """Words and spaces of Latin text, single CJK characters (a line may break after any of
    them), a slash or hyphen ending the word it follows."""
    out: list[str] = []
    word = ""
    for c in text:
        if c.isspace() or ord(c) > 0x2E80:
            if word:
                out.append(word)
            out.append(c)
            word = ""
        else:
            word += c
            if c in "/-":
                out.append(word)
                word = ""
    if word:
        out.append(word)
    return out


def wrap(text: str, ems: float) -> str:
    """``text`` on as few lines of at most ``ems`` as it takes (a word wider than a line on
    its own), breaking at spaces, after slashes and hyphens, and between CJK characters, the
    lines about even (no one-character last line); no character is dropped but the spaces
    lines break at."""
    lines = _greedy(text, ems)
    target = text_width(text) / len(lines)
    while target < ems:
        even = _greedy(text, target)
        if len(even) <= len(lines):
            return "\n".join(even)
        target += 0.5
    return "\n".join(lines)


def _greedy(text: str, ems: float) -> list[str]:
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        if line and not token.isspace() and text_width((line + token).rstrip()) > ems:
            lines.append(line.rstrip())
            line = ""
        if token.isspace() and not line:
            continue
        line += token
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def place_labels(
    anchors: np.ndarray[Any, Any],
    sizes: np.ndarray[Any, Any],
    area: tuple[float, float, float, float],
    *,
    dot_r: float = 0.0,
    gap: float = 1.0,
    reserved: Sequence[tuple[float, float, float, float]] = (),
) -> np.ndarray[Any, Any]:
    """Centres for boxes of ``sizes`` (width, height) near their ``anchors`` (all in one unit,
    e.g. display pixels) such that no two boxes come within ``gap`` of each other, no box
    covers another anchor's dot (radius ``dot_r``) or a ``reserved`` rectangle, and each box
    stays inside ``area`` (x0, y0, x1, y1). Each box takes its anchor when that is free, else
    the nearest free place on rings around it, leaning away from its crowded neighbours; the
    least crowded are placed first, so isolated labels sit on their points. A box with no free
    place within MAX_RINGS rings takes the place it overlaps least there.

    The area is a grid of unit cells (boxes rounded outwards): what is taken is counted in
    it and a candidate box is checked by a summed-area table, so the work per box does not
    grow with how many boxes there are."""
    n = len(anchors)
    out = anchors.astype("float64").copy()
    if n == 0:
        return out
    x0, y0, x1, y1 = area
    width, height = max(1, math.ceil(x1 - x0)), max(1, math.ceil(y1 - y0))
    taken = np.zeros((height, width), dtype="int32")
    for box in reserved:
        _mark(taken, (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0))
    # each dot as a square of side 2 (dot_r + gap): a box may not take a cell of another's
    dot_boxes = [(ax - x0 - dot_r - gap, ay - y0 - dot_r - gap, ax - x0 + dot_r + gap,
                  ay - y0 + dot_r + gap) for ax, ay in anchors.tolist()]  # fmt: skip
    dots = np.zeros((height, width), dtype="int32")
    for box in dot_boxes:
        _mark(dots, box)
    dot_table = _table(dots)
    step = float(sizes[:, 1].max()) * 0.6
    reach = 4 * float(sizes.max())
    crowd = np.asarray([int((np.hypot(*(anchors - a).T) < reach).sum()) for a in anchors])
    for i in np.lexsort((np.arange(n), crowd)):
        w, h = float(sizes[i][0]), float(sizes[i][1])
        dist = np.hypot(*(anchors - anchors[i]).T)
        near = (dist < reach) & (np.arange(n) != i)
        outward = anchors[i] - anchors[near].mean(axis=0) if near.any() else np.array([1.0, 1.0])
        lean = math.atan2(outward[1], outward[0]) if np.hypot(*outward) > 1e-9 else math.pi / 4
        dx0, dy0, dx1, dy1 = dot_boxes[i]
        own = _cells(dx0, dy0, dx1, dy1, width, height)
        best: tuple[float, np.ndarray[Any, Any]] | None = None
        for ring, rings in ((0, 8), (8, MAX_RINGS)):
            if best is not None and best[0] == 0:
                break
            radius = rings * step
            # the window these rings' boxes can reach, and what is taken in it
            cx, cy = anchors[i, 0] - x0, anchors[i, 1] - y0
            reach_px = radius + max(w, h) + gap + 2
            wx0, wy0 = max(0, int(cx - reach_px)), max(0, int(cy - reach_px))
            wx1, wy1 = min(width, int(cx + reach_px) + 1), min(height, int(cy + reach_px) + 1)
            local = _table(taken[wy0:wy1, wx0:wx1])
            cand = np.concatenate(
                [_ring(anchors[i], k * step, step, lean) for k in range(ring, rings)]
            )
            lo = cand - [x0 + w / 2 + gap, y0 + h / 2 + gap]
            hi = cand + [-x0 + w / 2 + gap, -y0 + h / 2 + gap]
            bx0, by0, bx1, by1 = _cells(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1], width, height)
            inside = (lo[:, 0] + gap >= 0) & (lo[:, 1] + gap >= 0)
            inside &= (hi[:, 0] - gap <= width) & (hi[:, 1] - gap <= height)
            clash = _sum(local, bx0 - wx0, by0 - wy0, bx1 - wx0, by1 - wy0)
            under = _sum(dot_table, bx0, by0, bx1, by1) - _shared((bx0, by0, bx1, by1), own)
            bad = clash + under + np.where(inside, 0, 10**6)
            free = bad == 0
            # the first free place in order of preference (nearest ring, then the lean)
            j = int(np.argmax(free)) if free.any() else int(np.argmin(bad))
            if best is None or bad[j] < best[0]:
                best = (float(bad[j]), cand[j])
        assert best is not None
        c = best[1]
        out[i] = c
        _mark(taken, (c[0] - x0 - w / 2, c[1] - y0 - h / 2, c[0] - x0 + w / 2, c[1] - y0 + h / 2))
    return out


def _cells(a: Any, b: Any, c: Any, d: Any, width: int, height: int) -> tuple[Any, Any, Any, Any]:
    """The cells a box (x0, y0, x1, y1) touches, rounded outwards and clipped to the grid:
    column and row ranges [x0, x1), [y0, y1)."""
    return (
        np.minimum(np.maximum(np.floor(a), 0), width).astype("int64"),
        np.minimum(np.maximum(np.floor(b), 0), height).astype("int64"),
        np.minimum(np.maximum(np.ceil(c), 0), width).astype("int64"),
        np.minimum(np.maximum(np.ceil(d), 0), height).astype("int64"),
    )


def _mark(grid: Any, box: tuple[float, float, float, float]) -> None:
    height, width = grid.shape
    a, b, c, d = (int(v) for v in _cells(*box, width, height))
    grid[b:d, a:c] += 1


def _table(grid: Any) -> Any:
    """Summed-area table: ``t[y, x]`` = sum of ``grid[:y, :x]``."""
    table = np.zeros((grid.shape[0] + 1, grid.shape[1] + 1), dtype="int64")
    table[1:, 1:] = grid.cumsum(axis=0).cumsum(axis=1)
    return table


def _sum(table: Any, a: Any, b: Any, c: Any, d: Any) -> Any:
    """Sum of the grid's cells in [a, c) x [b, d) (clipped to the table)."""
    hy, hx = table.shape[0] - 1, table.shape[1] - 1
    a, c = np.minimum(np.maximum(a, 0), hx), np.minimum(np.maximum(c, 0), hx)
    b, d = np.minimum(np.maximum(b, 0), hy), np.minimum(np.maximum(d, 0), hy)
    return table[d, c] - table[b, c] - table[d, a] + table[b, a]


def _shared(box: tuple[Any, Any, Any, Any], other: tuple[Any, Any, Any, Any]) -> Any:
    """Cells two cell ranges have in common (the first may be arrays)."""
    wx = np.minimum(box[2], other[2]) - np.maximum(box[0], other[0])
    wy = np.minimum(box[3], other[3]) - np.maximum(box[1], other[1])
    return np.maximum(wx, 0) * np.maximum(wy, 0)


def _ring(centre: np.ndarray[Any, Any], radius: float, step: float, lean: float) -> Any:
    """Points on a circle round ``centre`` about ``step`` apart, the direction ``lean`` first
    and then alternately either side of it (only the centre for radius 0)."""
    if radius == 0:
        return centre[None, :].astype("float64")
    m = max(8, int(2 * math.pi * radius / step))
    k = np.arange(m)
    turn = np.where(k % 2 == 1, (k + 1) // 2, -(k // 2)) * (2 * math.pi / m)
    angles = lean + turn
    return centre[None, :] + radius * np.column_stack([np.cos(angles), np.sin(angles)])
