"""The printed "one map" (一卷地图): every venue numbered over the district and street
boundaries, with a legend and an index table (number, name, unit, type, phone), on one A3 or
A4 landscape page, as PDF or PNG. GeoPandas + matplotlib, Chinese text in a CJK font from a
system package (:mod:`mapservice.stats.fonts`)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import geopandas as gpd
import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from shapely.geometry.base import BaseGeometry

from mapservice.core.geo import WGS84, metric_crs
from mapservice.stats.fonts import RENDER_LOCK, use_cjk

#: Landscape paper sizes in inches.
PAPERS = {"A3": (16.54, 11.69), "A4": (11.69, 8.27)}
FORMATS = ("pdf", "png")
PALETTE = [
    "#c62828", "#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457",
    "#4e342e", "#283593", "#558b2f", "#f9a825", "#37474f", "#d84315", "#00695c", "#5d4037",
]  # fmt: skip


@dataclass(frozen=True)
class MapVenue:
    name: str
    unit: str
    type_key: str
    type_label: str
    phone: str
    lon: float
    lat: float


def _width(text: str) -> float:
    """Approximate width in ems: CJK characters one em, others about half."""
    return sum(1.0 if ord(c) > 0x2E80 else 0.6 for c in text)


def _clip(text: str, ems: float) -> str:
    if _width(text) <= ems:
        return text
    out = ""
    for c in text:
        if _width(out + c) > ems - 1:
            return out + "…"
        out += c
    return out


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
    """One page: numbered venues (ordered by street, type, name so numbers cluster) on the
    left, the index on the right. Raises ValueError for an unknown paper or format and
    :class:`~mapservice.stats.fonts.FontMissing` without a CJK font."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r} (A3 or A4)")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (pdf or png)")
    use_cjk()
    with RENDER_LOCK:
        return _draw(venues, district, streets, title, paper, fmt, on or date.today(), dpi)


def _draw(
    venues: Sequence[MapVenue],
    district: BaseGeometry | None,
    streets: Sequence[tuple[str, BaseGeometry]],
    title: str,
    paper: str,
    fmt: str,
    on: date,
    dpi: int,
) -> bytes:
    w_in, h_in = PAPERS[paper]
    fig = Figure(figsize=(w_in, h_in))
    scale = h_in / PAPERS["A3"][1]  # type sizes shrink with the paper
    fig.text(0.02, 0.965, title, fontsize=20 * scale, weight="bold", va="top")
    fig.text(
        0.02, 0.925,
        f"阵地共享一张图 · 共 {len(venues)} 处阵地 · 制图日期 {on.isoformat()}",
        fontsize=10 * scale, va="top", color="#444",
    )  # fmt: skip
    ax = fig.add_axes((0.02, 0.15, 0.54, 0.76))
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
    ordered = sorted(venues, key=lambda v: (v.type_label, v.unit, v.name))
    types = sorted(
        {v.type_key for v in ordered},
        key=lambda k: next(v.type_label for v in ordered if v.type_key == k),
    )
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(types)}
    if ordered:
        pts = gpd.GeoSeries(
            gpd.points_from_xy([v.lon for v in ordered], [v.lat for v in ordered]), crs=WGS84
        ).to_crs(crs)
        for i, (v, p) in enumerate(zip(ordered, pts, strict=True), start=1):
            ax.scatter([p.x], [p.y], s=(150 if i < 100 else 190) * scale, color=colour[v.type_key],
                       edgecolors="white", linewidths=0.6, zorder=3)  # fmt: skip
            ax.annotate(str(i), (p.x, p.y), ha="center", va="center", fontsize=5.5 * scale,
                        color="white", weight="bold", zorder=4)  # fmt: skip
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colour[k], markersize=8 * scale,
               label=next(v.type_label for v in ordered if v.type_key == k))
        for k in types
    ]  # fmt: skip
    handles.append(Line2D([], [], color="#c62828", linewidth=2, label="区界"))
    handles.append(Line2D([], [], color="#78909c", linestyle="--", label="街道界"))
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.02, 0.02), fontsize=8 * scale,
               title="图例", title_fontsize=9 * scale, framealpha=0.9, ncols=6)  # fmt: skip
    _scale_bar(ax, scale)
    _index(fig, ordered, scale)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


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


def _index(fig: Figure, venues: Sequence[MapVenue], scale: float) -> None:
    """The index on the right: as many columns as needed, the largest type that fits."""
    left, right, top, bottom = 0.575, 0.99, 0.90, 0.03
    w_in, h_in = fig.get_size_inches()
    n = max(len(venues), 1)
    chosen = (1, 5.0)
    for size in (9.0, 8.0, 7.0, 6.5, 6.0, 5.5, 5.0, 4.5, 4.0):
        row_h = size * 1.45 / 72 / h_in
        rows = max(1, int((top - bottom - 0.03) / row_h))
        cols = math.ceil(n / rows)
        col_w_in = (right - left) * w_in / cols
        if col_w_in * 72 / size * 0.86 >= 40:  # about 40 ems: number, name, unit, type, phone
            chosen = (cols, size)
            break
    cols, size = chosen
    row_h = size * 1.45 / 72 / h_in
    rows = math.ceil(n / cols)
    col_w = (right - left) / cols
    ems = col_w * w_in * 72 / size * 0.86  # a margin for the estimate of text widths
    # Number, type and phone keep their full width; name and unit share the rest.
    phone_w = min(max([_width(v.phone) for v in venues] + [2.0]) + 1, 9.0)
    type_w = min(max([_width(v.type_label) for v in venues] + [2.0]) + 1, 9.0)
    rest = max(ems - 2.5 - phone_w - type_w, 8.0)
    widths = [2.5, rest * 0.55, rest * 0.45, type_w, phone_w]
    labels = ["编号", "名称", "所属单位", "类型", "电话"]
    fig.text(left, top + 0.02, "阵地索引", fontsize=12 * scale, weight="bold", va="bottom")
    offsets = [sum(widths[:i]) for i in range(len(widths))]
    for c in range(cols):
        x0 = left + c * col_w
        for label, off in zip(labels, offsets, strict=True):
            fig.text(x0 + off * size / 72 / w_in, top, label, fontsize=size, weight="bold",
                     va="top")  # fmt: skip
        for r in range(rows):
            i = c * rows + r
            if i >= len(venues):
                break
            v = venues[i]
            y = top - (r + 1.2) * row_h
            values = [str(i + 1), v.name, v.unit, v.type_label, v.phone]
            for value, off, width in zip(values, offsets, widths, strict=True):
                fig.text(x0 + off * size / 72 / w_in, y, _clip(value, width - 0.5), fontsize=size,
                         va="top", color="#000")  # fmt: skip
