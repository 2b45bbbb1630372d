"""The printed one map (mapservice.stats.printmap) read back from its PDF: every venue's number
is in the index on a page, and the numbered markers stay apart where venues crowd."""

from __future__ import annotations

import io
import math
import random
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from PIL import Image

from mapservice.core import geo
from mapservice.core.vocab import VenueType
from mapservice.stats.fonts import Rendered
from mapservice.stats.printmap import PAPERS, MapVenue, plan_index, print_map
from tests.conftest import GEODATA
from tests.pdftext import index_entries, index_problems, marker_pieces, read_pdf

STREET_SUFFIXES = ["青年之家", "羽毛球馆", "乒乓球室", "会议室", "多功能厅", "阅览室", "健身房"]
UNITS = [
    "中国移动镇江分公司",
    "国网镇江供电公司润州区供电服务中心",
    "镇江市润州区金山街道和平路社区居民委员会",
    "瑞祥科技集团",
    "江苏南昆仑律师事务所",
    "工行润州支行",
]


def crowded_world(
    n: int, seed: int = 16
) -> tuple[list[MapVenue], object, list[tuple[str, object]]]:
    """``n`` venues over Runzhou's district: two thirds of them in seven clusters a few hundred
    metres across (a street's offices, a campus, a business park), the rest spread over the
    streets; names, units and phones of realistic lengths."""
    district = geo.read_areas(GEODATA / "runzhou" / "district.geojson", level="district")[0]
    streets = geo.read_areas(GEODATA / "runzhou" / "streets.geojson", level="street")
    rng = random.Random(seed)
    shapes = [s.geometry for s in streets]
    centres = [shapes[k % len(shapes)].representative_point() for k in range(7)]
    types = list(VenueType)
    venues = []
    for i in range(n):
        if i % 3 < 2:
            c = centres[i % 7]
            r, a = 300 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
            lon = c.x + r * math.cos(a) / (111_320 * math.cos(math.radians(c.y)))
            lat = c.y + r * math.sin(a) / 110_574
        else:
            street = shapes[i % len(shapes)]
            x0, y0, x1, y1 = street.bounds
            while True:
                lon, lat = rng.uniform(x0, x1), rng.uniform(y0, y1)
                if street.contains(geo.Point(lon, lat)):
                    break
        kind = types[i % len(types)]
        unit = UNITS[i % len(UNITS)]
        venues.append(
            MapVenue(
                name=f"{streets[i % len(streets)].name}{i}号{rng.choice(STREET_SUFFIXES)}",
                unit=unit,
                type_key=kind.value,
                type_label=kind.label("zh_CN"),
                phone=f"0511-85{i:06d}",
                lon=lon,
                lat=lat,
            )
        )
    return venues, district.geometry, [(s.name, s.geometry) for s in streets]


@pytest.mark.parametrize(("paper", "n"), [("A4", 100), ("A3", 100), ("A4", 300)])
def test_every_venue_is_in_the_index_on_a_page_and_markers_stay_apart(paper, n):
    venues, district, streets = crowded_world(n)
    data = print_map(
        venues, district, streets, title="润州区青工委 功能阵地分布图", paper=paper,
        fmt="pdf", on=date(2026, 12, 3),
    )  # fmt: skip
    text = read_pdf(data)
    w_in, h_in = PAPERS[paper]
    for box in text.boxes:  # every page the paper's size, landscape
        assert (round(box[2] / 72, 1), round(box[3] / 72, 1)) == (round(w_in, 1), round(h_in, 1))
    names = [v.name for v in venues]
    assert index_problems(text, names) == []
    entries = index_entries(text, names)
    assert min(a.size for a, _b in entries.values()) >= 6.5  # index type stays readable
    markers = marker_pieces(text, n, {a for a, _b in entries.values()})
    numbers = sorted(int(p.text) for p in markers)
    assert numbers == list(range(1, n + 1)), "each venue has one numbered marker"
    assert all(p.page == 0 and text.on_page(p) for p in markers)
    assert min(p.size for p in markers) >= 5.5
    clashes = [
        (a.text, b.text)
        for i, a in enumerate(markers)
        for b in markers[i + 1 :]
        if a.overlaps(b, pad=0.5)
    ]
    assert clashes == []


def test_png_holds_every_page_one_under_the_other():
    """A PNG is one file: the pages of the PDF one under the other, each the paper's size."""
    venues, district, streets = crowded_world(100)
    pages = plan_index(100, "A4").pages
    assert pages == 2  # 100 venues do not fit beside the map on A4 at a readable size
    png = print_map(
        venues, district, streets, title="润州区青工委 功能阵地分布图", paper="A4", fmt="png",
        on=date(2026, 12, 3), dpi=40,
    )  # fmt: skip
    with Image.open(io.BytesIO(png)) as im:
        w_in, h_in = PAPERS["A4"]
        assert abs(im.width - w_in * 40) <= 1
        assert abs(im.height - pages * h_in * 40) <= pages
        # the second page is not blank: its index text darkens it
        second = im.crop((0, im.height // 2, im.width, im.height)).convert("L")
        assert second.getextrema()[0] < 100


def test_index_plan_fits_beside_the_map_when_it_can():
    """A few dozen venues keep the one page; the demo's hundred take a second A4 page."""
    assert plan_index(30, "A4").pages == 1 and plan_index(30, "A4").size == 9.0
    assert plan_index(60, "A3").pages == 1
    assert plan_index(100, "A4").pages == 2 and plan_index(100, "A4").size == 7.5
    plan = plan_index(300, "A3")
    rows_cols = zip(plan.rows, plan.cols, strict=True)
    assert sum(r * c for r, c in rows_cols) >= 300


def test_the_same_map_is_sent_again_and_any_change_is_drawn_anew():
    """Asked for again with nothing changed, the printed map is the document already drawn
    (the same bytes); a renamed venue, another day or another paper is drawn anew and shows
    the change."""
    venues, district, streets = crowded_world(12)
    venues = [replace(venues[0], name="旧名球场"), *venues[1:]]
    kw: dict[str, Any] = {"title": "润州区青工委 功能阵地分布图", "paper": "A4", "fmt": "pdf"}
    first = print_map(venues, district, streets, on=date(2026, 12, 3), **kw)
    assert print_map(list(venues), district, streets, on=date(2026, 12, 3), **kw) is first
    renamed = [replace(venues[0], name="新名球场"), *venues[1:]]
    again = print_map(renamed, district, streets, on=date(2026, 12, 3), **kw)
    assert again is not first

    def shows(data: bytes, name: str) -> bool:
        return any(name in p.text for p in read_pdf(data).pieces)

    assert (shows(first, "旧名球场"), shows(first, "新名球场")) == (True, False)
    assert (shows(again, "旧名球场"), shows(again, "新名球场")) == (False, True)
    assert print_map(venues, district, streets, on=date(2026, 12, 4), **kw) is not first
    a3 = {**kw, "paper": "A3"}
    assert print_map(venues, district, streets, on=date(2026, 12, 3), **a3) is not first


def test_rendered_documents_are_bounded_by_the_bytes_they_hold():
    kept = Rendered(max_bytes=10)
    kept.put("a", b"12345")
    kept.put("b", b"12345")
    assert kept.get("a") == b"12345"  # a is now the most recently used
    kept.put("c", b"123")
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == (b"12345", None, b"123")
    kept.put("big", b"x" * 11)  # larger than the whole cache: sent, not kept
    assert kept.get("big") is None and kept.get("a") == b"12345"
    assert Rendered.key("t", [1, 2]) != Rendered.key("t", [12]) != Rendered.key("t", ["1", 2])
