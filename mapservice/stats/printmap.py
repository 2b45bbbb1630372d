"""The printed "one map" (一卷地图): every venue numbered over the district and street
boundaries, with a legend and an index table (number, name, unit, type, phone), on A3 or A4
landscape pages, as PDF or PNG. GeoPandas + matplotlib, Chinese text in a CJK font from a
system package (:mod:`mapservice.stats.fonts`).

The first page holds the map and as much of the index as fits beside it at a readable size;
the rest of the index continues on further pages (a PDF of several pages; a PNG of the pages
one under the other). Where venues crowd, a venue's numbered marker moves to the nearest free
place and a leader line joins it to the dot at the venue's position, so no number covers
another."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import geopandas as gpd
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image
from shapely.geometry.base import BaseGeometry

from mapservice.core.geo import WGS84, metric_crs
from mapservice.stats.fonts import RENDERED, drawn, use_cjk
from mapservice.stats.labels import clip, place_labels, text_width

#: Landscape paper sizes in inches.
PAPERS = {"A3": (16.54, 11.69), "A4": (11.69, 8.27)}
FORMATS = ("pdf", "png")
PALETTE = [
    "#c62828", "#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457",
    "#4e342e", "#283593", "#558b2f", "#f9a825", "#37474f", "#d84315", "#00695c", "#5d4037",
]  # fmt: skip
#: Index type sizes (points) tried for an index that fits beside the map on one page; an
#: index that does not fit at the smallest continues on further pages at INDEX_PAGED.
INDEX_SIZES = (9.0, 8.5, 8.0, 7.5, 7.0)
INDEX_PAGED = 7.5
#: The narrowest index column, in ems: number, name, unit, type and phone side by side.
INDEX_MIN_EMS = 40.0
#: Marker numbers (points): small enough to crowd less, large enough to read.
MARKER_SIZE = {"A3": 7.0, "A4": 6.0}
#: Where the map sits on the first page and the index on each page (figure fractions).
MAP_BOX = (0.02, 0.15, 0.54, 0.76)
FIRST_INDEX = (0.575, 0.99)
NEXT_INDEX = (0.02, 0.99)
INDEX_TOP, INDEX_BOTTOM = 0.90, 0.04


@dataclass(frozen=True)
class MapVenue:
    name: str
    unit: str
    type_key: str
    type_label: str
    phone: str
    lon: float
    lat: float


def print_map(
    venues: Sequence[MapVenue],
    district: BaseGeometry | None,
    streets: Sequence[tuple[str, BaseGeometry]],
    *,
    title: str,
    paper: str = "A3",
    fmt: str = "pdf",
    on: date | None = None,
    dpi: int = 150,
) -> bytes:
    """The map page with numbered venues (ordered by type, unit and name, so the index reads
    by type) and the index beside it, continued on further pages when it does not fit: a PDF
    of those pages, or one PNG of them one under the other. Raises ValueError for an unknown
    paper or format and :class:`~mapservice.stats.fonts.FontMissing` without a CJK font."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r} (A3 or A4)")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (pdf or png)")
    use_cjk()
    on = on or date.today()
    key = RENDERED.key("map", list(venues), district, list(streets), title, paper, fmt, on, dpi)
    return drawn(
        lambda: (
            RENDERED.get(key)
            or RENDERED.put(
                key, _save(_draw(venues, district, streets, title, paper, on), fmt, dpi)
            )
        )
    )


def _save(pages: list[Figure], fmt: str, dpi: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "pdf":
        with PdfPages(buf) as pdf:
            for page in pages:
                pdf.savefig(page)
        return buf.getvalue()
    images: list[Image.Image] = []
    for page in pages:
        one = io.BytesIO()
        page.savefig(one, format="png", dpi=dpi, facecolor="white")
        one.seek(0)
        with Image.open(one) as im:
            images.append(im.convert("RGB"))
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    sheet.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@dataclass(frozen=True)
class IndexPlan:
    """How the index is cut: its type size and how many entries each page's columns hold."""

    size: float
    #: entries per column on each page, and columns on each page
    rows: list[int]
    cols: list[int]

    @property
    def pages(self) -> int:
        return len(self.rows)


def _region_fit(frac_w: float, w_in: float, h_in: float, size: float) -> tuple[int, int]:
    """Columns and rows of index entries at ``size`` in a region of the page's width share
    ``frac_w`` between INDEX_TOP and INDEX_BOTTOM (a header row on top)."""
    width_pt = frac_w * w_in * 72
    # the header takes 1.2 rows; the last row's letters hang a row below its top line
    rows = int((INDEX_TOP - INDEX_BOTTOM) * h_in * 72 / (size * 1.45) - 1.2 - 1)
    cols = max(1, int(width_pt // (size * INDEX_MIN_EMS)))
    return cols, max(1, rows)


def plan_index(n: int, paper: str) -> IndexPlan:
    """The largest type size at which the index fits beside the map; else INDEX_PAGED on the
    first page and as many further pages, index only, as it takes."""
    w_in, h_in = PAPERS[paper]
    first_w = FIRST_INDEX[1] - FIRST_INDEX[0]
    for size in INDEX_SIZES:
        cols, rows = _region_fit(first_w, w_in, h_in, size)
        if cols * rows >= n:
            return IndexPlan(size, [max(1, math.ceil(n / cols))], [cols])
    size = INDEX_PAGED
    cols, rows = _region_fit(first_w, w_in, h_in, size)
    plan_rows, plan_cols = [rows], [cols]
    left = n - cols * rows
    more_cols, more_rows = _region_fit(NEXT_INDEX[1] - NEXT_INDEX[0], w_in, h_in, size)
    while left > 0:
        used_cols = min(more_cols, math.ceil(left / more_rows))
        plan_rows.append(more_rows)
        plan_cols.append(used_cols)
        left -= used_cols * more_rows
    return IndexPlan(size, plan_rows, plan_cols)


def _draw(
    venues: Sequence[MapVenue],
    district: BaseGeometry | None,
    streets: Sequence[tuple[str, BaseGeometry]],
    title: str,
    paper: str,
    on: date,
) -> list[Figure]:
    w_in, h_in = PAPERS[paper]
    scale = h_in / PAPERS["A3"][1]  # type sizes shrink with the paper
    ordered = sorted(venues, key=lambda v: (v.type_label, v.unit, v.name))
    plan = plan_index(len(ordered), paper)
    fig = Figure(figsize=(w_in, h_in))
    FigureCanvasAgg(fig)  # a renderer to measure the markers with
    fig.text(0.02, 0.965, title, fontsize=20 * scale, weight="bold", va="top")
    subtitle = f"阵地共享一张图 · 共 {len(venues)} 处阵地 · 制图日期 {on.isoformat()}"
    if plan.pages > 1:
        subtitle += f" · 共 {plan.pages} 页"
    fig.text(0.02, 0.925, subtitle, fontsize=10 * scale, va="top", color="#444")
    ax = fig.add_axes(MAP_BOX)
    ax.set_axis_off()
    ax.set_aspect("equal")
    lon0 = district.centroid.x if district is not None else (venues[0].lon if venues else 119.0)
    crs = metric_crs(float(lon0))
    if district is not None:
        gpd.GeoSeries([district], crs=WGS84).to_crs(crs).plot(
            ax=ax, facecolor="#fff8f6", edgecolor="#c62828", linewidth=2
        )
    if streets:
        st = gpd.GeoSeries([g for _, g in streets], crs=WGS84).to_crs(crs)
        st.plot(ax=ax, facecolor="none", edgecolor="#78909c", linewidth=0.8, linestyle="--")
        for (name, _), geom in zip(streets, st, strict=True):
            p = geom.representative_point()
            ax.annotate(
                name, (p.x, p.y), ha="center", va="center", fontsize=11 * scale,
                color="#90a4ae", weight="bold", zorder=1,
            )  # fmt: skip
    types = sorted(
        {v.type_key for v in ordered},
        key=lambda k: next(v.type_label for v in ordered if v.type_key == k),
    )
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(types)}
    if ordered:
        pts = gpd.GeoSeries(
            gpd.points_from_xy([v.lon for v in ordered], [v.lat for v in ordered]), crs=WGS84
        ).to_crs(crs)
        xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
        ax.update_datalim(xy)
        ax.autoscale_view()
        _markers(fig, ax, xy, [colour[v.type_key] for v in ordered], MARKER_SIZE[paper])
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colour[k], markersize=8 * scale,
               label=next(v.type_label for v in ordered if v.type_key == k))
        for k in types
    ]  # fmt: skip
    handles.append(Line2D([], [], color="#c62828", linewidth=2, label="区界"))
    handles.append(Line2D([], [], color="#78909c", linestyle="--", label="街道界"))
    handles.append(Line2D([], [], color="#546e7a", linewidth=0.6, label="引线（编号移开处）"))
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.02, 0.02), fontsize=8 * scale,
               title="图例", title_fontsize=9 * scale, framealpha=0.9, ncols=6)  # fmt: skip
    _scale_bar(ax, scale)
    pages = [fig]
    start = 0
    for page in range(plan.pages):
        if page > 0:
            fig = Figure(figsize=(w_in, h_in))
            fig.text(0.02, 0.965, title, fontsize=14 * scale, weight="bold", va="top")
            pages.append(fig)
        start = _index(fig, ordered, plan, page, start, scale)
        if plan.pages > 1:
            fig.text(0.99, 0.012, f"第 {page + 1} 页，共 {plan.pages} 页", ha="right",
                     fontsize=8 * scale, color="#444")  # fmt: skip
    return pages


def _scale_bar(ax: matplotlib.axes.Axes, scale: float) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    span = (x1 - x0) / 5
    length = 10 ** math.floor(math.log10(span)) if span > 0 else 1000
    if span / length >= 5:
        length *= 5
    elif span / length >= 2:
        length *= 2
    x, y = x1 - (x1 - x0) * 0.05 - length, y0 + (y1 - y0) * 0.04
    ax.plot([x, x + length], [y, y], color="black", linewidth=3)
    label = f"{length / 1000:g} 公里" if length >= 1000 else f"{length:g} 米"
    ax.annotate(label, (x + length / 2, y), xytext=(0, 4), textcoords="offset points",
                ha="center", fontsize=8 * scale)  # fmt: skip
    ax.annotate("N ↑", (x1 - (x1 - x0) * 0.04, y1 - (y1 - y0) * 0.04), ha="center",
                fontsize=12 * scale, weight="bold")  # fmt: skip


# --- markers ----------------------------------------------------------------------------------

#: Corners of the map kept free for the scale bar (lower right) and the north arrow (upper
#: right), as axes fractions (x0, y0, x1, y1).
RESERVED = ((0.68, 0.0, 1.0, 0.10), (0.90, 0.88, 1.0, 1.0))
MARKER_PAD = 0.25  # ems around a marker's number


def _marker_sizes(fig: Figure, size: float, n: int) -> dict[int, tuple[float, float]]:
    """Width and height (display pixels) of a marker holding a number of each digit count up
    to ``n``'s, measured on the figure's renderer (numbers have digits of one width)."""
    renderer: Any = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    out = {}
    for digits in range(1, len(str(max(n, 1))) + 1):
        probe = fig.text(0, 0, "8" * digits, fontsize=size, weight="bold",
                         bbox={"boxstyle": f"round,pad={MARKER_PAD}"})  # fmt: skip
        probe.draw(renderer)
        patch = probe.get_bbox_patch()
        assert patch is not None
        box = patch.get_window_extent(renderer)
        out[digits] = (float(box.width), float(box.height))
        probe.remove()
    return out


def _markers(
    fig: Figure, ax: matplotlib.axes.Axes, xy: np.ndarray[Any, Any], colours: list[str], size: float
) -> None:
    """A dot at each venue and its number in a marker of its type's colour: on the dot where
    there is room, else at the nearest free place with a leader line to the dot."""
    # Fix the view (at least 2 km across) and the axes' box, so that data map to the page as
    # they will be drawn: the leader lines and markers drawn below must not rescale it.
    for get, put in ((ax.get_xlim, ax.set_xlim), (ax.get_ylim, ax.set_ylim)):
        lo, hi = get()
        mid, half = (lo + hi) / 2, max((hi - lo) / 2, 1000.0)
        put(mid - half, mid + half)
    ax.apply_aspect()
    to_px = ax.transData
    anchors = to_px.transform(xy)
    box = ax.get_window_extent()
    sizes = _marker_sizes(fig, size, len(xy))
    wh = np.asarray([sizes[len(str(i + 1))] for i in range(len(xy))])
    reserved = [
        (box.x0 + a * box.width, box.y0 + b * box.height, box.x0 + c * box.width,
         box.y0 + d * box.height)
        for a, b, c, d in RESERVED
    ]  # fmt: skip
    dot_r = size * 0.3 * fig.dpi / 72
    centres = place_labels(
        anchors, wh, (box.x0, box.y0, box.x1, box.y1), dot_r=dot_r,
        gap=0.6 * fig.dpi / 72, reserved=reserved,
    )  # fmt: skip
    back = to_px.inverted()
    where = back.transform(centres)
    moved = np.hypot(*(centres - anchors).T) > 0.5
    for k in np.flatnonzero(moved).tolist():
        ax.plot([xy[k, 0], where[k, 0]], [xy[k, 1], where[k, 1]], color="#546e7a",
                linewidth=0.5, zorder=3, solid_capstyle="round")  # fmt: skip
    ax.scatter(xy[:, 0], xy[:, 1], s=(size * 0.6) ** 2, c=colours, edgecolors="white",
               linewidths=0.4, zorder=4)  # fmt: skip
    for i, (x, y) in enumerate(where):
        ax.text(x, y, str(i + 1), ha="center", va="center", fontsize=size, color="white",
                weight="bold", zorder=5,
                bbox={"boxstyle": f"round,pad={MARKER_PAD}", "facecolor": colours[i],
                      "edgecolor": "white", "linewidth": 0.5})  # fmt: skip


# --- index ------------------------------------------------------------------------------------


def _index(
    fig: Figure, venues: Sequence[MapVenue], plan: IndexPlan, page: int, start: int, scale: float
) -> int:
    """This page's part of the index, from entry ``start``; returns where the next page
    starts. Columns run top to bottom, left to right."""
    left, right = FIRST_INDEX if page == 0 else NEXT_INDEX
    top = INDEX_TOP
    w_in, h_in = fig.get_size_inches()
    size = plan.size
    rows, cols = plan.rows[page], plan.cols[page]
    count = min(len(venues) - start, rows * cols)
    row_h = size * 1.45 / 72 / h_in
    col_w = (right - left) / cols
    ems = col_w * w_in * 72 / size * 0.95  # a margin for the estimate of text widths
    # Number, type and phone keep their full width; name and unit share the rest.
    num_w = max(2.5, text_width(str(len(venues))) + 1)
    phone_w = min(max([text_width(v.phone) for v in venues] + [2.0]) + 1, 9.0)
    type_w = min(max([text_width(v.type_label) for v in venues] + [2.0]) + 1, 9.0)
    rest = max(ems - num_w - phone_w - type_w, 8.0)
    widths = [num_w, rest * 0.55, rest * 0.45, type_w, phone_w]
    labels = ["编号", "名称", "所属单位", "类型", "电话"]
    heading = "阵地索引" if page == 0 else "阵地索引（续）"
    if count > 0:
        heading += f"  {start + 1}–{start + count}"
    if page + 1 < plan.pages:
        heading += f"（续见第 {page + 2} 页）"
    fig.text(left, top + 0.02, heading, fontsize=12 * scale, weight="bold", va="bottom")
    if not venues:
        fig.text(left, top, "（暂无阵地）", fontsize=size, va="top")
        return start
    offsets = [sum(widths[:i]) for i in range(len(widths))]
    for c in range(cols):
        if c * rows >= count:
            break
        x0 = left + c * col_w
        for label, off in zip(labels, offsets, strict=True):
            fig.text(x0 + off * size / 72 / w_in, top, label, fontsize=size, weight="bold",
                     va="top")  # fmt: skip
        for r in range(rows):
            i = start + c * rows + r
            if i >= start + count:
                break
            v = venues[i]
            y = top - (r + 1.2) * row_h
            values = [str(i + 1), v.name, v.unit, v.type_label, v.phone]
            for value, off, width in zip(values, offsets, widths, strict=True):
                fig.text(x0 + off * size / 72 / w_in, y, clip(value, width - 0.5), fontsize=size,
                         va="top", color="#000")  # fmt: skip
    return start + count
