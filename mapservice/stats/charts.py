"""Charts and static maps of a :class:`~mapservice.stats.report.Report`, drawn server-side with
matplotlib (no pyplot state: each call builds its own Figure, so threads do not collide) and
GeoPandas, as PNG or SVG that print and export as they look on screen."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import TypeVar, cast

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from shapely.geometry.base import BaseGeometry

from mapservice.core.geo import WGS84, metric_crs
from mapservice.core.i18n import _
from mapservice.stats.fonts import drawn, use_cjk
from mapservice.stats.labels import place_labels, wrap
from mapservice.stats.report import Report

RED = "#c62828"
GREY = "#90a4ae"
#: Bar labels wrap at this many ems (a CJK character is one), so no name is cut.
BAR_LABEL_EMS = 16
#: The map panels: their size in inches (shown about this size on the page, two a row) and
#: the type size of the streets' labels, dark on a white halo so they read on any fill.
MAP_SIZE = (5.6, 5.2)
MAP_LABEL_SIZE = 10
HALO = [patheffects.withStroke(linewidth=3, foreground="white")]

T = TypeVar("T")


def render(figure: Figure, fmt: str = "png", dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    figure.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _pct_axis(ax: Axes, axis: str = "x") -> None:
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(PercentFormatter(1.0))


def _row_heights(labels: list[str]) -> float:
    """Inches the rows of a bar chart take: more for labels wrapped on several lines."""
    return sum(max(0.28, 0.15 * (label.count("\n") + 1) + 0.08) for label in labels)


def _empty(ax: Axes) -> None:
    ax.text(0.5, 0.5, _("No data for this period"), ha="center", va="center", color="#666")
    ax.set_axis_off()


#: At most this many weeks of the trend are labelled.
TREND_LABELS = 14


def trend(r: Report) -> Figure:
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    t = r.trend
    if t.empty:
        _empty(ax)
        return fig
    x = np.arange(len(t))
    ax.plot(x, t["utilization"], marker="o", color=RED, label=_("Utilization"))
    ax.plot(x, t["realized_utilization"], marker="s", color="#1565c0", label=_("Realized"))
    # A year has 53 weeks: every week keeps its point, at most TREND_LABELS of them a label
    # (their Mondays would overlap), the first always among them.
    step = max(1, -(-len(t) // TREND_LABELS))
    ax.set_xticks(x[::step], list(t["week"])[::step], rotation=45 if len(t) > 8 else 0)
    ax.set_ylim(0, max(0.05, float(t["utilization"].max()) * 1.2))
    _pct_axis(ax, "y")
    ax.set_title(_("Utilization by week"))
    ax.set_xlabel(_("Week (Monday)"))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _bars(frame: pd.DataFrame, value: str, title: str, limit: int = 20) -> Figure:
    frame = frame.sort_values(value, ascending=True).tail(limit)
    labels = [wrap(str(n), BAR_LABEL_EMS) for n in frame["name"]]
    fig = Figure(figsize=(7, max(2.4, _row_heights(labels) + 1)))
    ax = fig.add_subplot()
    if frame.empty:
        _empty(ax)
        return fig
    y = np.arange(len(frame))
    ax.barh(y, frame[value], color=RED)
    ax.set_yticks(y, labels, fontsize=8)
    for yy, v in zip(y, frame[value], strict=True):
        ax.text(float(v), float(yy), f" {float(v):.0%}", va="center", fontsize=7)
    _pct_axis(ax)
    ax.set_xlim(0, max(0.05, float(frame[value].max()) * 1.25))
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return fig


def by_type(r: Report) -> Figure:
    return _bars(r.by_type, "utilization", _("Utilization by venue type"))


def by_unit(r: Report) -> Figure:
    return _bars(r.by_unit, "utilization", _("Utilization by unit (top 20)"))


def top(r: Report) -> Figure:
    return _bars(r.top, "utilization", _("Most used venues"), 10)


def idle(r: Report) -> Figure:
    frame = r.idle.head(10).iloc[::-1]
    fig = _bars(frame, "utilization", _("Idle venues (below %(t)s)", t=f"{r.threshold:.0%}"), 10)
    return fig


def heatmap(r: Report) -> Figure:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    grid = r.heat.to_numpy()
    im = ax.imshow(grid, aspect="auto", cmap="Reds", interpolation="nearest")
    days = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
    ax.set_yticks(range(7), days)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel(_("Hour of day"))
    ax.set_title(_("Booked capacity-hours by weekday and hour"))
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    return fig


def sharing(r: Report) -> Figure:
    s = r.sharing[r.sharing["booked_cap_hours"] > 0]
    fig = Figure(figsize=(7, 4.2))
    ax1, ax2 = fig.subplots(1, 2, sharex=True)
    if s.empty:
        _empty(ax1)
        _empty(ax2)
        return fig
    most = s.sort_values(["sharing_rate", "shared_cap_hours"], ascending=False).head(8)
    least = s.sort_values(["sharing_rate", "shared_cap_hours"], ascending=True).head(8)
    panels = [
        (ax, frame, [wrap(str(n), 11) for n in frame["name"]], title, colour)
        for ax, frame, title, colour in (
            (ax1, most.iloc[::-1], _("Share most"), "#2e7d32"),
            (ax2, least.iloc[::-1], _("Share least"), GREY),
        )
    ]
    fig.set_size_inches(7, max(4.2, max(_row_heights(p[2]) for p in panels) + 1.4))
    for ax, frame, labels, title, colour in panels:
        y = np.arange(len(frame))
        ax.barh(y, frame["sharing_rate"], color=colour)
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_title(title, fontsize=10)
        _pct_axis(ax)
        ax.set_xlim(0, 1.05)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(_("Sharing rate by unit (hours used by other units' groups)"), fontsize=10)
    fig.tight_layout()
    return fig


# --- maps -------------------------------------------------------------------------------------


def _crs(r: Report) -> str:
    if r.district is not None:
        return metric_crs(float(r.district.centroid.x))
    lon = float(r.venues["lon"].mean()) if len(r.venues) else 119.0
    return metric_crs(lon)


def _base(r: Report, ax: Axes, crs: str) -> gpd.GeoDataFrame:
    streets = gpd.GeoDataFrame(
        {"name": [n for n, _ in r.street_shapes]},
        geometry=[g for _, g in r.street_shapes],
        crs=WGS84,
    ).to_crs(crs)
    if r.district is not None:
        gpd.GeoSeries([r.district], crs=WGS84).to_crs(crs).plot(
            ax=ax, facecolor="none", edgecolor=RED, linewidth=1.5
        )
    ax.set_axis_off()
    ax.set_aspect("equal")
    return streets


def _label_areas(fig: Figure, ax: Axes, labels: list[tuple[str, BaseGeometry]]) -> None:
    """Each area's label (dark text on a white halo) at a point inside it, moved apart where
    labels would overlap, with a leader line when moved off the area's point. Call it last:
    it fixes the map's scale and position on the figure (colour bars and legends first)."""
    if not labels:
        return
    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    for get, put in ((ax.get_xlim, ax.set_xlim), (ax.get_ylim, ax.set_ylim)):
        put(*get())  # no autoscaling by what is drawn below
    ax.apply_aspect()
    points = np.asarray(
        [[g.representative_point().x, g.representative_point().y] for _, g in labels]
    )
    texts = [
        ax.text(x, y, text, ha="center", va="center", fontsize=MAP_LABEL_SIZE,
                color="#212121", zorder=6, path_effects=HALO, gid="area-label")
        for (text, _g), (x, y) in zip(labels, points, strict=True)
    ]  # fmt: skip
    sizes = np.asarray(
        [[t.get_window_extent(renderer).width, t.get_window_extent(renderer).height] for t in texts]
    )
    anchors = ax.transData.transform(points)
    box = ax.get_window_extent(renderer)
    fig_box = fig.bbox
    # inside the figure (the map's edge may be passed: the saved image is cropped to fit)
    area = (fig_box.x0 + 2, fig_box.y0 + 2, fig_box.x1 - 2, box.y1)
    centres = place_labels(anchors, sizes, area, gap=2.0)
    where = ax.transData.inverted().transform(centres)
    for text, (x, y), (ax0, ay0), moved in zip(
        texts, where, points, np.hypot(*(centres - anchors).T), strict=True
    ):
        text.set_position((x, y))
        if moved > 0.6 * MAP_LABEL_SIZE:
            ax.plot([ax0, x], [ay0, y], color="#455a64", linewidth=0.6, zorder=5)


def _venue_points(r: Report, crs: str) -> gpd.GeoDataFrame:
    vt = r.venues
    return gpd.GeoDataFrame(
        vt[["name", "utilization", "capacity_units"]].reset_index(drop=True),
        geometry=gpd.points_from_xy(vt["lon"], vt["lat"]),
        crs=WGS84,
    ).to_crs(crs)


def map_venues(r: Report) -> Figure:
    fig = Figure(figsize=MAP_SIZE)
    ax = fig.add_subplot()
    crs = _crs(r)
    streets = _base(r, ax, crs)
    if len(streets):  # a committee may have no street boundaries loaded
        streets.plot(ax=ax, facecolor="#fafafa", edgecolor=GREY, linewidth=0.6, linestyle="--")
    pts = _venue_points(r, crs)
    if len(pts):
        sc = ax.scatter(
            pts.geometry.x,
            pts.geometry.y,
            s=20 + 400 * pts["utilization"].to_numpy(),
            c=pts["utilization"].to_numpy(),
            cmap="RdYlGn",
            vmin=0,
            vmax=max(0.01, float(pts["utilization"].max())),
            edgecolors="#333",
            linewidths=0.4,
            alpha=0.85,
        )
        cb = fig.colorbar(sc, ax=ax, fraction=0.035, pad=0.02)
        cb.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(_("Venues by utilization (size and colour)"))
    _label_areas(
        fig, ax, [(str(n), g) for n, g in zip(streets["name"], streets.geometry, strict=True)]
    )
    return fig


def _choropleth(r: Report, column: str, title: str, pct: bool) -> Figure:
    fig = Figure(figsize=MAP_SIZE)
    ax = fig.add_subplot()
    crs = _crs(r)
    streets = _base(r, ax, crs)
    values = r.streets.set_index("name")[column]
    streets["value"] = values.reindex(streets["name"]).fillna(0.0).to_numpy()
    ax.set_title(title)
    if len(streets):
        legend: dict[str, object] = {"fraction": 0.035, "pad": 0.02}
        if pct:  # the scale in % as every other figure of utilization
            legend["format"] = PercentFormatter(1.0)
        streets.plot(
            ax=ax, column="value", cmap="Reds", edgecolor="#555", linewidth=0.6, legend=True,
            legend_kwds=legend,
        )  # fmt: skip
        _label_areas(
            fig,
            ax,
            [
                (f"{name}\n{v:.0%}" if pct else f"{name}\n{v:.1f}", geom)
                for name, geom, v in zip(
                    streets["name"], streets.geometry, streets["value"], strict=True
                )
            ],
        )
    return fig


def map_density(r: Report) -> Figure:
    return _choropleth(r, "venues_per_km2", _("Streets: venues per km²"), pct=False)


def map_street_utilization(r: Report) -> Figure:
    return _choropleth(r, "utilization", _("Streets: utilization"), pct=True)


def map_coverage(r: Report) -> Figure:
    fig = Figure(figsize=MAP_SIZE)
    ax = fig.add_subplot()
    crs = _crs(r)
    streets = _base(r, ax, crs)
    if len(streets):
        streets.plot(ax=ax, facecolor="#e8f5e9", edgecolor="#555", linewidth=0.6)
    gaps = gpd.GeoSeries([s.gap for s in r.coverage.streets], crs=WGS84).to_crs(crs)
    gaps = gaps[~gaps.is_empty]
    if len(gaps):
        gaps.plot(ax=ax, facecolor="#ffcdd2", edgecolor=RED, hatch="///", linewidth=0.3)
    reach = gpd.GeoSeries([r.coverage.reach], crs=WGS84).to_crs(crs)
    if not r.coverage.reach.is_empty:
        reach.plot(ax=ax, facecolor="none", edgecolor="#2e7d32", linewidth=1)
    if r.coverage_points:
        pts = gpd.GeoSeries(
            gpd.points_from_xy(*zip(*r.coverage_points, strict=True)), crs=WGS84
        ).to_crs(crs)
        ax.scatter(pts.x, pts.y, s=14, color="#2e7d32", zorder=3)
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(facecolor="#e8f5e9", edgecolor="#555", label=_("Within reach")),
            Patch(facecolor="#ffcdd2", edgecolor=RED, hatch="///", label=_("Gap (out of reach)")),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=2,
        fontsize=9,
        frameon=False,
    )
    ax.set_title(
        _(
            "Coverage: %(type)s within %(km)s km — %(share)s of the area",
            type=r.coverage_type_label,
            km=f"{r.coverage.radius_m / 1000:g}",
            share=f"{r.coverage.share:.0%}",
        ),
        fontsize=10,
    )
    _label_areas(
        fig,
        ax,
        [
            (f"{s.name}\n{s.share:.0%}", geom)
            for s, geom in zip(r.coverage.streets, streets.geometry, strict=True)
        ],
    )
    return fig


CHARTS: dict[str, Callable[[Report], Figure]] = {
    "trend": trend,
    "by_type": by_type,
    "by_unit": by_unit,
    "heatmap": heatmap,
    "top": top,
    "idle": idle,
    "sharing": sharing,
    "map_venues": map_venues,
    "map_density": map_density,
    "map_utilization": map_street_utilization,
    "map_coverage": map_coverage,
}


def chart(
    subject: T,
    name: str,
    fmt: str = "png",
    charts: Mapping[str, Callable[[T], Figure]] | None = None,
) -> bytes:
    """Render chart ``name`` of ``subject`` as ``png`` or ``svg`` bytes: a key of ``charts``
    (by default :data:`CHARTS`, of a :class:`Report`; the activity figures pass theirs)."""
    draw = cast(Mapping[str, Callable[[T], Figure]], CHARTS) if charts is None else charts
    use_cjk()
    return drawn(lambda: render(draw[name](subject), fmt))
