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
    figures: dict[str, float | None] = {
        "server_uncached_ratio": 31.0,
        "first_visit_ratio": 9.9,
        "cold_drawn_s": 1.5,
        "export_gzip_mb": 1.6,
        "export_drawn_s": None,  # not measured (no browser): not judged
    }
    missed = mb.missed(figures)
    assert [m.split(" (")[0] for m in missed] == [
        "first visit gzipped, naive/ours 9.9x",
        "exported file gzipped 1.6 MB",
    ]
    assert mb.verdict("cold_drawn_s", 1.5, judged=True).endswith(": met)")
    assert "MISSED" in mb.verdict("server_uncached_ratio", 29.9, judged=True)
    assert "not judged" in mb.verdict("server_uncached_ratio", 1.0, judged=False)
    assert "not measured" in mb.verdict("export_drawn_s", None, judged=True)
