"""The dashboard's charts and map panels as drawn (mapservice.stats.charts): every label says
the whole name, the street utilization scale reads in %, and the streets' labels on the small
maps are large, haloed and apart."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patheffects import withStroke

from mapservice.core.i18n import use_locale
from mapservice.models import Booking
from mapservice.stats import charts
from mapservice.stats.fonts import use_cjk
from mapservice.stats.frames import Scope
from mapservice.stats.periods import period_for
from mapservice.stats.report import build_report
from tests.conftest import RUNZHOU_POINT
from tests.test_stats import TZ, local

LONG_TYPES = ["public_land", "patriotic_base", "entrepreneurship_base", "social_practice_base"]
LONG_UNITS = [
    "国网镇江供电公司润州区供电服务中心",
    "镇江西津渡文化旅游发展有限公司",
    "中国工商银行股份有限公司镇江润州支行",
]


@pytest.fixture
def world(db, make):
    """Venues of the types with the longest English names, owned by units with long names,
    each booked in March 2026 by another unit's group (so every chart has rows)."""
    use_cjk()
    committee = make.committee()
    units = [make.unit(committee, name) for name in LONG_UNITS]
    groups = [make.group(committee, u) for u in units]
    venues = []
    for i, kind in enumerate(LONG_TYPES * 2):
        venues.append(
            make.venue(
                units[i % 3],
                name=f"润州区{kind}{i}号综合活动中心（区级青年阵地）",
                type=kind,
                lon=RUNZHOU_POINT[0] + 0.004 * i,
                lat=RUNZHOU_POINT[1],
                hours="Mon-Sun 09:00-21:00",
            )
        )
    for i, venue in enumerate(venues):
        for day in range(2, 2 + 1 + i % 4):
            db.add(
                Booking(
                    venue_id=venue.id,
                    group_id=groups[(i + 1) % 3].id,
                    start_at=local(day, 9),
                    end_at=local(day, 12 + i % 3),
                    units=1,
                    status="confirmed",
                    created_at=local(1, 8),
                )
            )
    db.commit()
    period = period_for("month", date(2026, 3, 1), TZ)
    with use_locale("en"):
        report = build_report(
            db, Scope(committee.id), period, threshold=0.5, now=datetime(2026, 4, 2, tzinfo=TZ)
        )
    return report


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_bar_labels_say_the_whole_name_in_english(world):
    """ "Outdoor / public-welfare land" was cut to "Outdoor / public-w", long unit names to
    12 or 18 characters: each label now wraps and keeps every character."""
    expected = {
        "by_type": [
            "Outdoor / public-welfare land",
            "Patriotic education base",
            "Entrepreneurship base",
            "Social practice base",
        ],
        "by_unit": LONG_UNITS,
        "sharing": LONG_UNITS,
        "top": list(world.venues["name"]),
    }
    with use_locale("en"):
        for name, names in expected.items():
            fig = charts.CHARTS[name](world)
            ticks = {
                squeeze(t.get_text())
                for ax in fig.axes
                for t in ax.get_yticklabels()
                if t.get_text()
            }
            assert ticks, name
            assert ticks <= {squeeze(n) for n in names}, (name, ticks)
            assert {squeeze(n) for n in names} <= ticks or name == "top", (name, ticks)
        by_type = charts.CHARTS["by_type"](world)
        labels = [t.get_text() for t in by_type.axes[0].get_yticklabels()]
        assert "Outdoor / public-\nwelfare land" in labels  # two lines, not cut


def test_street_utilization_scale_reads_in_percent(world):
    """The colour scale of the street utilization map showed 0.05, 0.10…: now 5 %, 10 %…"""
    with use_locale("en"):
        fig = charts.CHARTS["map_utilization"](world)
    FigureCanvasAgg(fig).draw()
    scale = fig.axes[-1]  # the colour bar
    ticks = [t.get_text() for t in scale.get_yticklabels() if t.get_text()]
    assert ticks and all(t.endswith("%") for t in ticks), ticks


@pytest.mark.parametrize("name", ["map_venues", "map_density", "map_utilization", "map_coverage"])
def test_map_panel_labels_are_large_haloed_and_apart(world, name):
    """Each street's label on the small maps: at least 10 pt on a figure shown about its own
    size (was 7 pt on a figure shrunk to less than half), dark on a white halo so it reads on
    the darkest fill, and no two overlapping."""
    with use_locale("en"):
        fig = charts.CHARTS[name](world)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    streets = [n for n, _g in world.street_shapes]
    labels = [t for ax in fig.axes for t in ax.texts if t.get_text().split("\n")[0] in streets]
    assert sorted(t.get_text().split("\n")[0] for t in labels) == sorted(streets)
    assert fig.get_size_inches()[0] <= 6
    for t in labels:
        assert t.get_fontsize() >= 10
        assert any(isinstance(e, withStroke) for e in t.get_path_effects())
    boxes = [t.get_window_extent(renderer) for t in labels]
    clashes = [
        (labels[i].get_text(), labels[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ]
    assert clashes == []
    # every label inside the figure: the saved image is cropped around what is drawn
    page = fig.bbox
    assert all(page.x0 <= b.x0 and b.x1 <= page.x1 and page.y0 <= b.y0 for b in boxes)


def test_a_year_of_weeks_is_labelled_without_overlap():
    """53 weekly points, every one drawn; at most 14 Mondays labelled, the first among them
    (a year's labels all at once overlapped into an unreadable band)."""
    from types import SimpleNamespace

    import pandas as pd

    from mapservice.stats import charts

    weeks = pd.date_range("2025-12-29", periods=53, freq="7D")
    frame = pd.DataFrame(
        {
            "week": [f"{d:%m-%d}" for d in weeks],
            "utilization": [0.1] * 53,
            "realized_utilization": [0.05] * 53,
        }
    )
    fig = charts.trend(SimpleNamespace(trend=frame))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert 4 <= len(labels) <= 14
    assert labels[0] == "12-29" and labels[1] == frame["week"][4]
    assert len(ax.lines[0].get_xdata()) == 53
    short = charts.trend(SimpleNamespace(trend=frame.head(6)))
    assert [t.get_text() for t in short.axes[0].get_xticklabels()] == list(frame["week"][:6])


def test_every_figure_is_drawn_on_one_thread_in_the_callers_context() -> None:
    """matplotlib caches its fonts per thread (6.5 MB of CJK faces each): whichever of a
    worker's threads asks, the drawing runs on the process's one drawing thread, sees the
    caller's context (its request, its locale), hands back what it returned or raised, and a
    drawing asked for inside one runs at once rather than waiting on itself."""
    import contextvars
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from mapservice.stats.fonts import drawn

    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")

    def ask(name: str) -> tuple[int, str, int]:
        who.set(name)
        return drawn(lambda: (threading.get_ident(), who.get(), drawn(threading.get_ident)))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, [f"request-{i}" for i in range(12)]))
    threads = {a[0] for a in answers} | {a[2] for a in answers}
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert [a[1] for a in answers] == [f"request-{i}" for i in range(12)]

    def fails() -> None:
        raise ValueError("no such chart")

    with pytest.raises(ValueError, match="no such chart"):
        drawn(fails)
    assert drawn(threading.get_ident) in threads  # still the same thread after a failure
