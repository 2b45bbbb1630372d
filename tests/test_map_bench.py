"""The map benchmark's own bookkeeping (bench/map_bench.py; `make bench-smoke` runs the rest):
what a page loads and whose it is, the data URL the page fetches first, and how targets are
judged. No database, no browser."""

from __future__ import annotations

import re

from bench import map_bench as mb
from mapservice.core import mapdata
from mapservice.maps import one_map
from mapservice.maps.page import page_parts

PAGE = """<html><head>
<link rel="stylesheet" href="/vendor/leaflet/leaflet.css">
<link rel="preload" as="fetch" crossorigin="anonymous" href="/map/data.json?a=1&amp;crs=wgs84">
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/static/css/app.css">
</head><body>
<script src="/vendor/leaflet/leaflet.js"></script>
<script src="/vendor/mapservice/venue-layer.js"></script>
<script src="/map/one-map.js"></script>
<script src="/vendor/leaflet/leaflet.js"></script>
<script data-csp-hashed>var x = {"dataUrl": "/map/data.json?committee=runzhou"};</script>
</body></html>"""


def test_what_the_page_loads_and_whose_it_is() -> None:
    # Scripts and style sheets only, each once: the preloaded data is counted as the data.
    assert mb.page_assets(PAGE) == [
        "/vendor/leaflet/leaflet.css",
        "/static/css/app.css",
        "/vendor/leaflet/leaflet.js",
        "/vendor/mapservice/venue-layer.js",
        "/map/one-map.js",
    ]
    ours = [p for p in mb.page_assets(PAGE) if mb.is_ours(p)]
    assert ours == ["/static/css/app.css", "/vendor/mapservice/venue-layer.js", "/map/one-map.js"]
    assert mb.data_url_of(PAGE) == "/map/data.json?committee=runzhou&crs=wgs84"


def test_the_page_preloads_exactly_the_data_the_bench_counts() -> None:
    url = "/map/data.json?committee=runzhou&types=gym"
    parts = page_parts(one_map(areas=[], tiles=mapdata.tile_layers("none"), data_url=url))
    preload = re.search(
        r'<link rel="preload" as="fetch" crossorigin="anonymous" href="([^"]+)"', parts.head
    )
    assert preload is not None
    assert preload.group(1).replace("&amp;", "&") == mb.data_url_of(parts.script)
    # The offline file embeds its venues: nothing to preload.
    embedded = one_map(
        areas=[],
        tiles=mapdata.tile_layers("none"),
        columns={
            "id": [],
            "x": [],
            "y": [],
            "t": [],
            "u": [],
            "name": [],
            "types": [],
            "units": [],
            "scale": 100000,
        },
    )
    assert "preload" not in page_parts(embedded).head


def test_targets_are_judged_on_the_measured_figures() -> None:
    # The limits come from bench/targets.toml (benchmark 4); a list is judged on its median.
    assert set(mb.TARGETS) == {
        "map_server_uncached_ratio",
        "map_first_visit_ratio",
        "map_cold_drawn_s",
        "map_export_gzip_mb",
        "map_export_drawn_s",
    }
    limits = {k: t.limit for k, t in mb.TARGETS.items()}
    figures: dict[str, float | list[float] | None] = {
        "map_server_uncached_ratio": [limits["map_server_uncached_ratio"] + 1] * 3,
        "map_first_visit_ratio": limits["map_first_visit_ratio"] - 0.1,
        "map_cold_drawn_s": [0.1, limits["map_cold_drawn_s"], 99.0],
        "map_export_gzip_mb": limits["map_export_gzip_mb"] + 0.1,
        "map_export_drawn_s": None,  # not measured (no browser): not judged
    }
    missed = mb.missed(figures)
    assert len(missed) == 2
    assert missed[0].startswith(mb.TARGETS["map_first_visit_ratio"].what + " ")
    assert missed[1].startswith(mb.TARGETS["map_export_gzip_mb"].what + " ")
    assert mb.verdict("map_cold_drawn_s", [0.1, limits["map_cold_drawn_s"], 9], True).endswith(
        ": met)"
    )
    assert "MISSED" in mb.verdict("map_server_uncached_ratio", 1.0, judged=True)
    assert "not judged" in mb.verdict("map_server_uncached_ratio", 1.0, judged=False)
    assert "not measured" in mb.verdict("map_export_drawn_s", None, judged=True)
