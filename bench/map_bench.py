"""The one map at city scale: 10,000 venues, ours against the naive folium way, in one run.

Ours: the map shell (``/map``) and the data it draws (``/map/data.json``: delta-encoded
columns, gzip; popup details are fetched one venue at a time when a popup opens), drawn
client-side by Leaflet.markercluster. Naive: one ``folium.Marker`` (with a popup) per venue in
a ``MarkerCluster``, rendered to one HTML page. Measured: server time (median of ``--repeat``
requests answered from the data cache, and median of ``--repeat`` cache misses: the answer
built from the database), gzipped bytes, and (ours) the time headless Chromium takes from
navigation to clusters drawn.

Bytes are what a browser downloads. The headline is page + data, as before; the next line
adds everything else our page fetches from our own origin on a first visit (boundaries, the
map's script and style sheet) and lists the vendored libraries apart (Leaflet,
markercluster, Bootstrap: folium's page loads its equivalents from CDNs, counted on neither
side). The GeoJSON answer (``/map/data.geojson``, kept for other readers) is measured too.

    .venv/bin/python bench/map_bench.py [--venues 10000] [--repeat 5] [--no-browser]
        [--output FILE]

Prints one line per measurement and writes ``bench/results/map.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from mapservice.core import geo  # noqa: E402
from mapservice.core.vocab import VenueType  # noqa: E402
from mapservice.db import make_engine  # noqa: E402
from mapservice.migrate import upgrade  # noqa: E402
from mapservice.models import Committee, OpeningHours, Unit, Venue  # noqa: E402
from mapservice.operations.areas import load_areas  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "map.json"
GEODATA = ROOT / "geodata" / "runzhou"


def populate(url: str, n: int, seed: int = 1) -> None:
    """A committee with the Runzhou boundaries, 50 units and ``n`` venues inside the
    district, bulk-inserted (the registry's per-row validation is not what is measured)."""
    rnd = random.Random(seed)
    engine = make_engine(url)
    district = geo.read_areas(GEODATA / "district.geojson", level="district")
    streets = geo.read_areas(GEODATA / "streets.geojson", level="street")
    shape = district[0].geometry
    minx, miny, maxx, maxy = shape.bounds
    types = [t.value for t in VenueType]
    with Session(engine) as s:
        committee = Committee(slug="runzhou", name="润州区青工委", timezone="Asia/Shanghai")
        s.add(committee)
        s.flush()
        load_areas(s, None, committee, district, "district")
        load_areas(s, None, committee, streets, "street")
        units = [
            Unit(committee_id=committee.id, name=f"成员单位{i:02d}", status="active", kind="soe")
            for i in range(50)
        ]
        s.add_all(units)
        s.flush()
        rows: list[dict[str, Any]] = []
        while len(rows) < n:
            lon, lat = rnd.uniform(minx, maxx), rnd.uniform(miny, maxy)
            if not geo.contains(shape, lon, lat):
                continue
            i = len(rows)
            rows.append(
                {
                    "committee_id": committee.id,
                    "unit_id": units[i % 50].id,
                    "name": f"阵地{i:05d}号活动室",
                    "type": types[i % len(types)],
                    "lon": round(lon, 7),
                    "lat": round(lat, 7),
                    "entered_crs": "wgs84",
                    "entered_lon": round(lon, 7),
                    "entered_lat": round(lat, 7),
                    "address": f"润州区某路{i}号",
                    "capacity_units": 1 + i % 4,
                    "max_headcount": 10 + i % 90,
                    "facilities": "空调, 投影" if i % 3 else "",
                    "phone": f"0511-8{i:07d}",
                }
            )
        s.execute(insert(Venue), rows)
        ids = list(s.scalars(Venue.__table__.select().with_only_columns(Venue.id)))
        hours = [
            {"venue_id": vid, "weekday": d, "start_min": 8 * 60, "end_min": 21 * 60}
            for vid in ids
            for d in range(7)
        ]
        s.execute(insert(OpeningHours), hours)
        s.commit()
    engine.dispose()


def decode_columns(body: dict[str, Any]) -> list[tuple[int, str, str, int, float, float]]:
    """``(id, name, type, unit id, lon, lat)`` per venue from ``/map/data.json``."""
    out = []
    i = x = y = 0
    for k in range(len(body["id"])):
        i += body["id"][k]
        x += body["x"][k]
        y += body["y"][k]
        out.append(
            (
                i,
                body["name"][k],
                body["types"][body["t"][k]],
                body["units"][body["u"][k]][0],
                x / body["scale"],
                y / body["scale"],
            )
        )
    return out


def timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """(cold seconds, median warm seconds, last result)."""
    t0 = time.perf_counter()
    result = fn()
    cold = time.perf_counter() - t0
    warm: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        warm.append(time.perf_counter() - t0)
    return cold, statistics.median(warm), result


def naive_folium(app: Any) -> bytes:
    """The way folium's examples do it: one Marker (with an HTML popup) per venue."""
    import folium
    from folium.plugins import MarkerCluster
    from sqlalchemy import select

    from mapservice.web.database import get_db

    with app.test_request_context():
        venues = get_db().execute(select(Venue.name, Venue.lon, Venue.lat)).all()
        m = folium.Map(location=[32.2, 119.42], zoom_start=12, tiles=None)
        cluster = MarkerCluster().add_to(m)
        for name, lon, lat in venues:
            folium.Marker([lat, lon], popup=folium.Popup(name), tooltip=name).add_to(cluster)
        html = m.get_root().render()
    return html.encode()


def browser_time(app: Any, runs: int = 3) -> list[float]:
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import chromium, live_server

    out: list[float] = []
    with live_server(app) as base, chromium(1280, 900) as driver:
        for _ in range(runs):
            driver.get(f"{base}/map")
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script(
                    "return !!(window.MapService && MapService.oneMap"
                    " && MapService.oneMap.firstReadyAt)"
                )
            )
            out.append(driver.execute_script("return MapService.oneMap.firstReadyAt") / 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venues", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    from mapservice import create_app

    with tempfile.TemporaryDirectory(prefix="mapservice-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        t0 = time.perf_counter()
        populate(url, args.venues)
        print(f"setup: {args.venues} venues bulk-inserted in {time.perf_counter() - t0:.2f} s")
        app = create_app(
            {"DATABASE_URL": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tmp, "TESTING": True}
        )
        client = app.test_client()
        gz = {"Accept-Encoding": "gzip"}

        def get(path: str) -> Any:
            resp = client.get(path, headers=gz)
            assert resp.status_code == 200, (path, resp.status_code)
            return resp

        shell_cold, shell_warm, shell = timed(lambda: get("/map"), args.repeat)
        cache = app.extensions.setdefault("map_data_cache", {})
        data_path = "/map/data.json?committee=runzhou"
        data_cold, data_warm, data = timed(lambda: get(data_path), args.repeat)

        def uncached(path: str) -> Any:
            cache.clear()
            return get(path)

        _first, data_miss, _ = timed(lambda: uncached(data_path), args.repeat)
        geojson_path = "/map/data.geojson?committee=runzhou"
        _first, geojson_miss, geojson = timed(lambda: uncached(geojson_path), args.repeat)
        venues = decode_columns(json.loads(gzip.decompress(data.data)))
        features = json.loads(gzip.decompress(geojson.data))["features"]
        assert len(venues) == args.venues, len(venues)
        # The columns say what the GeoJSON says (ids, names, types, units, coordinates to 1 m).
        assert len(features) == len(venues)
        for v, f in zip(venues, features, strict=True):
            p, (lon, lat) = f["properties"], f["geometry"]["coordinates"]
            assert (v[0], v[1], v[2], v[3]) == (p["i"], p["n"], p["t"], p["u"]), (v, p)
            assert abs(v[4] - lon) <= 0.6e-5 and abs(v[5] - lat) <= 0.6e-5, (v, lon, lat)
        areas = get("/map/areas.geojson?committee=runzhou")
        one_venue = venues[0][0]
        popup_cold, popup_warm, popup = timed(
            lambda: get(f"/map/venues/{one_venue}/popup"), args.repeat
        )
        # Everything else the page fetches from our origin: its scripts and style sheets.
        page_html = gzip.decompress(shell.data).decode()
        assets: dict[str, int] = {}
        for src in re.findall(r'(?:src|href)="(/[^"?]+\.(?:js|css))"', page_html):
            resp = get(src)
            assets[src] = len(resp.data)
            resp.close()
        own_assets = {k: v for k, v in assets.items() if not k.startswith("/vendor/")}
        vendor_assets = {k: v for k, v in assets.items() if k.startswith("/vendor/")}
        ours_bytes = len(shell.data) + len(data.data)
        first_visit = ours_bytes + len(areas.data) + sum(own_assets.values())
        ours_warm = shell_warm + data_warm
        naive_cold, naive_warm, naive_html = timed(lambda: naive_folium(app), 1)
        naive_gz = len(gzip.compress(naive_html, 6))
        raw = len(gzip.decompress(data.data))
        geojson_raw = len(gzip.decompress(geojson.data))

        results: dict[str, Any] = {
            "venues": args.venues,
            "machine": platform.platform(),
            "python": platform.python_version(),
            "ours": {
                "shell_server_s": {"cold": shell_cold, "warm_median": shell_warm},
                "data_server_s": {
                    "cold": data_cold,
                    "warm_median": data_warm,
                    "cache_miss_median": data_miss,
                },
                "geojson_server_s": {"cache_miss_median": geojson_miss},
                "popup_server_s": {"cold": popup_cold, "warm_median": popup_warm},
                "shell_gzip_bytes": len(shell.data),
                "data_gzip_bytes": len(data.data),
                "data_raw_bytes": raw,
                "geojson_gzip_bytes": len(geojson.data),
                "geojson_raw_bytes": geojson_raw,
                "popup_gzip_bytes": len(popup.data),
                "areas_gzip_bytes": len(areas.data),
                "own_assets_bytes": own_assets,
                "vendor_assets_bytes": vendor_assets,
                "page_plus_data_gzip_bytes": ours_bytes,
                "first_visit_own_origin_bytes_excluding_vendor": first_visit,
                "page_plus_data_server_s": ours_warm,
            },
            "naive_folium": {
                "server_s": {"cold": naive_cold, "warm_median": naive_warm},
                "html_bytes": len(naive_html),
                "html_gzip_bytes": naive_gz,
            },
        }
        print(
            f"server time, /map + data, warm median: ours {ours_warm:.3f} s"
            f" (shell {shell_warm:.3f} + data {data_warm:.3f}; cold {shell_cold + data_cold:.3f};"
            f" data built from the database, median of {args.repeat}: {data_miss:.3f}, the GeoJSON"
            f" {geojson_miss:.3f}) | naive folium {naive_warm:.3f} s"
            f" | naive/ours {naive_warm / ours_warm:.1f}x"
        )
        print(
            f"bytes gzipped, page + data: ours {ours_bytes / 1e6:.3f} MB"
            f" | naive folium {naive_gz / 1e6:.3f} MB ({len(naive_html) / 1e6:.2f} MB raw)"
            f" | naive/ours {naive_gz / ours_bytes:.1f}x"
        )
        print(
            f"first visit from our origin, as downloaded: {first_visit / 1e3:.0f} kB"
            f" (page {len(shell.data) / 1e3:.1f} + data {len(data.data) / 1e3:.1f}"
            f" + boundaries {len(areas.data) / 1e3:.1f} + "
            + " + ".join(f"{k.rsplit('/', 1)[-1]} {v / 1e3:.1f}" for k, v in own_assets.items())
            + f"; naive/ours {naive_gz / first_visit:.1f}x) + vendored libraries"
            f" {sum(vendor_assets.values()) / 1e3:.0f} kB (cached a day; folium's come from CDNs)"
            f" | each popup then fetches its details: {len(popup.data)} bytes,"
            f" {popup_warm * 1000:.1f} ms"
        )
        print(
            f"data endpoint: {len(data.data) / 1e3:.0f} kB gzipped, {raw / 1e3:.0f} kB raw,"
            f" {len(venues)} venues, same as the GeoJSON's {len(features)} features"
            f" ({len(geojson.data) / 1e3:.0f} kB gzipped, {geojson_raw / 1e3:.0f} kB raw)"
        )
        if not args.no_browser:
            times = browser_time(app)
            results["ours"]["chromium_clusters_drawn_s"] = times
            print(
                "headless Chromium, navigation to clusters drawn: "
                + ", ".join(f"{t:.2f} s" for t in times)
                + f" (median {statistics.median(times):.2f} s; naive folium: not measurable"
                " offline, its page loads Leaflet from a CDN)"
            )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"written: {args.output}")
        app.extensions["db_engine"].dispose()


if __name__ == "__main__":
    main()
