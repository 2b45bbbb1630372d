"""The one map at city scale: 10,000 venues, ours against the naive folium page, in one run.

Ours: ``/map`` — the page built by ``mapservice.maps.one_map`` with its map code and the
boundaries inline — plus ``/map/data.json`` (delta-encoded columns, gzip; popup details fetched
one venue at a time when a popup opens), drawn by our folium plugin (``venue-layer.js``) with
Leaflet.markercluster; and the offline file of ``mapservice map export --format html``. Naive:
one ``folium.Marker`` (with a popup and a tooltip) per venue in a ``MarkerCluster``, rendered to
one HTML page — the way folium's examples do it.

Measured (issue 18's figures, each printed beside its target and the baseline):

* **server time, uncached**: the first ``/map`` and the first ``/map/data.json`` of a freshly
  started app (a new process: ``create_app`` imports folium, caches are empty), against the
  naive page rendered in that same process right after; the median over ``--starts`` fresh
  processes. Warm (the median of ``--repeat`` further requests) beside it.
* **bytes gzipped, first visit**: the page, the data and every script and style sheet of ours
  that the page loads (``/map/one-map.js``, ``/static/css/app.css``,
  ``/vendor/mapservice/venue-layer.js`` and ``maps.css``), as downloaded; the vendored
  libraries (Leaflet, markercluster, Bootstrap, …) listed apart, as folium's own libraries
  (from CDNs) are not counted on the naive side. With the browser, what Chromium fetched is
  checked against what was counted.
* **clusters drawn on a cold profile**: headless Chromium with a fresh user-data directory
  against a freshly started server process, from navigation to the venues drawn in clusters
  (``MapService.oneMap.firstReadyAt``); each of ``--cold-runs`` such first loads, judged on
  their median; warm reloads beside.
* **the exported file**: its gzipped size, and the time it takes to draw opened from disk
  (``file://``, network off) on a cold profile.

Nothing is typed in: every figure comes from this run. With ``--no-targets`` (the smoke run)
nothing is judged; otherwise the exit status is 3 when a target is missed.

    .venv/bin/python bench/map_bench.py [--venues 10000] [--repeat 5] [--starts 3]
        [--cold-runs 3] [--warm-runs 3] [--no-browser] [--no-targets] [--output FILE]

Prints one line per measurement and writes ``bench/results/map.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import targets as targets_  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "map.json"
GEODATA = ROOT / "geodata" / "runzhou"
COMMITTEE = "runzhou"
MISSED_EXIT = 3


# ---- targets (issue 18, "Speed"), from bench/targets.toml ---------------------------------

#: The map's targets: those of bench/targets.toml measured by benchmark 4, by key.
TARGETS = {k: t for k, t in targets_.load().items() if t.bench == "4"}


def _median(value: float | list[float]) -> float:
    return statistics.median(value) if isinstance(value, list) else value


def verdict(key: str, value: float | list[float] | None, judged: bool) -> str:
    """``(target …: met)`` / ``MISSED`` / ``not measured``, for the line beside the figure
    (a list: one value per round, judged on its median)."""
    target = TARGETS[key]
    if value is None:
        return f"(target {target.text()}: not measured)"
    if not judged:
        return f"(target {target.text()}: not judged in this run)"
    return f"(target {target.text()}: {'met' if target.met(_median(value)) else 'MISSED'})"


def missed(figures: dict[str, float | list[float] | None]) -> list[str]:
    """The targets missed among the measured ``figures`` (key -> value or rounds)."""
    return [
        f"{TARGETS[k].what} {TARGETS[k].fmt(_median(v))} (target {TARGETS[k].text()})"
        for k, v in figures.items()
        if v is not None and not TARGETS[k].met(_median(v))
    ]


# ---- what a page loads ------------------------------------------------------------------

_ASSET = re.compile(
    r'<script\b[^>]*\bsrc="(/[^"]+)"|<link\b[^>]*\brel="stylesheet"[^>]*\bhref="(/[^"]+)"'
)


def page_assets(html: str) -> list[str]:
    """The same-origin scripts and style sheets a page names, in order, each once."""
    seen: dict[str, None] = {}
    for script, style in _ASSET.findall(html):
        seen[(script or style).replace("&amp;", "&")] = None
    return list(seen)


def is_ours(path: str) -> bool:
    """Our own code (counted with the page) as opposed to a vendored library (listed apart):
    the app's static files and ``/map/…`` scripts, and our folium plugin's files, served as
    ``/vendor/mapservice/…``."""
    return not path.startswith("/vendor/") or path.startswith("/vendor/mapservice/")


def data_url_of(html: str) -> str:
    """The data URL the page's map code fetches first (``venue-layer.js`` adds the first base
    map's coordinate system, WGS-84 for the tiles the bench configures)."""
    found = re.search(r'"dataUrl":\s*"([^"]+)"', html)
    if found is None:
        raise SystemExit("the /map page names no dataUrl: is the venue layer still on it?")
    url = found.group(1).replace("\\u0026", "&").replace("&amp;", "&")
    return url + ("&" if "?" in url else "?") + "crs=wgs84"


# ---- the dataset ------------------------------------------------------------------------


def populate(url: str, n: int, seed: int = 1) -> None:
    """A committee with the Runzhou boundaries, 50 units and ``n`` venues inside the
    district, bulk-inserted (the registry's per-row validation is not what is measured)."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from mapservice.core import geo
    from mapservice.core.vocab import VenueType
    from mapservice.db import make_engine
    from mapservice.models import Committee, OpeningHours, Unit, Venue
    from mapservice.operations.areas import load_areas

    rnd = random.Random(seed)
    engine = make_engine(url)
    district = geo.read_areas(GEODATA / "district.geojson", level="district")
    streets = geo.read_areas(GEODATA / "streets.geojson", level="street")
    shape = district[0].geometry
    minx, miny, maxx, maxy = shape.bounds
    types = [t.value for t in VenueType]
    with Session(engine) as s:
        committee = Committee(slug=COMMITTEE, name="润州区青工委", timezone="Asia/Shanghai")
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


def app_config(url: str, tmp: str) -> dict[str, Any]:
    return {"DATABASE_URL": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tmp, "TESTING": True}


# ---- server side: one freshly started process -------------------------------------------


def naive_folium(app: Any) -> bytes:
    """The way folium's examples do it: one Marker (with an HTML popup) per venue."""
    import folium
    from folium.plugins import MarkerCluster
    from sqlalchemy import select

    from mapservice.models import Venue
    from mapservice.web.database import get_db

    with app.test_request_context():
        venues = get_db().execute(select(Venue.name, Venue.lon, Venue.lat)).all()
        m = folium.Map(location=[32.2, 119.42], zoom_start=12, tiles=None)
        cluster = MarkerCluster().add_to(m)
        for name, lon, lat in venues:
            folium.Marker([lat, lon], popup=folium.Popup(name), tooltip=name).add_to(cluster)
        html = m.get_root().render()
    return html.encode()


def probe(url: str, tmp: str, repeat: int, check: bool) -> dict[str, Any]:
    """Run in a fresh process: start the app as a server does, then time its first ``/map``
    and first data answer (uncached), then warm ones, then the naive page, all here."""
    t0 = time.perf_counter()
    from mapservice import create_app

    app = create_app(app_config(url, tmp))
    startup = time.perf_counter() - t0
    folium_at_start = "folium" in sys.modules
    cache_at_start = len(app.extensions.get("map_data_cache", {}))
    client = app.test_client()
    gz = {"Accept-Encoding": "gzip"}

    def get(path: str) -> Any:
        t = time.perf_counter()
        resp = client.get(path, headers=gz)
        seconds = time.perf_counter() - t
        assert resp.status_code == 200, (path, resp.status_code)
        return seconds, resp

    shell_first, shell = get("/map")
    html = gzip.decompress(shell.data).decode()
    data_path = data_url_of(html)
    data_first, data = get(data_path)
    shell_warm = statistics.median(get("/map")[0] for _ in range(repeat))
    data_warm = statistics.median(get(data_path)[0] for _ in range(repeat))
    cache: dict[Any, Any] = app.extensions["map_data_cache"]

    def miss(path: str) -> tuple[float, Any]:
        cache.clear()
        return get(path)

    misses = [miss(data_path)[0] for _ in range(repeat)]
    geojson_path = f"/map/data.geojson?committee={COMMITTEE}"
    geojson_misses = [miss(geojson_path) for _ in range(repeat)]
    geojson = geojson_misses[-1][1]
    body = json.loads(gzip.decompress(data.data))
    venues = decode_columns(body)
    features = json.loads(gzip.decompress(geojson.data))["features"]
    if check:
        # The columns say what the GeoJSON says (ids, names, types, units, coordinates to 1 m).
        assert len(features) == len(venues)
        for v, f in zip(venues, features, strict=True):
            p, (lon, lat) = f["properties"], f["geometry"]["coordinates"]
            assert (v[0], v[1], v[2], v[3]) == (p["i"], p["n"], p["t"], p["u"]), (v, p)
            assert abs(v[4] - lon) <= 0.6e-5 and abs(v[5] - lat) <= 0.6e-5, (v, lon, lat)
    popup_s = []
    for _ in range(repeat):
        seconds, popup = get(f"/map/venues/{venues[0][0]}/popup")
        popup_s.append(seconds)
    assets: dict[str, int] = {}
    for path in page_assets(html):
        resp = get(path)[1]
        assets[path] = len(resp.data)
        resp.close()
    t = time.perf_counter()
    naive_html = naive_folium(app)
    naive_s = time.perf_counter() - t
    app.extensions["db_engine"].dispose()
    return {
        "startup_s": startup,
        "folium_imported_at_start": folium_at_start,
        "data_cache_entries_at_start": cache_at_start,
        "uncached_s": {"shell": shell_first, "data": data_first},
        "warm_median_s": {"shell": shell_warm, "data": data_warm},
        "data_cache_miss_median_s": statistics.median(misses),
        "geojson_cache_miss_median_s": statistics.median(s for s, _ in geojson_misses),
        "popup_median_s": statistics.median(popup_s),
        "popup_gzip_bytes": len(popup.data),
        "shell_gzip_bytes": len(shell.data),
        "shell_raw_bytes": len(html.encode()),
        "data_path": data_path,
        "data_gzip_bytes": len(data.data),
        "data_raw_bytes": len(gzip.decompress(data.data)),
        "geojson_gzip_bytes": len(geojson.data),
        "geojson_raw_bytes": len(gzip.decompress(geojson.data)),
        "venues": len(venues),
        "assets_bytes": assets,
        "naive_s": naive_s,
        "naive_raw_bytes": len(naive_html),
        "naive_gzip_bytes": len(gzip.compress(naive_html, 6)),
    }


def fresh_process(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def run_probe(url: str, tmp: str, repeat: int, check: bool) -> dict[str, Any]:
    cmd = fresh_process("--probe", url, "--tmp", tmp, "--repeat", str(repeat))
    proc = subprocess.run(
        [*cmd, *(["--check"] if check else [])], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        raise SystemExit(f"probe failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- a freshly started server, for the browser ------------------------------------------


def serve(url: str, tmp: str) -> None:
    """Run in a fresh process: the app under waitress on a free loopback port, printed."""
    import logging

    from waitress.server import create_server

    from mapservice import create_app

    logging.getLogger("waitress").setLevel(logging.ERROR)
    server = create_server(create_app(app_config(url, tmp)), host="127.0.0.1", port=0, threads=4)
    print(f"PORT {server.effective_port}", flush=True)
    server.run()


@contextmanager
def fresh_server(url: str, tmp: str) -> Iterator[str]:
    proc = subprocess.Popen(
        fresh_process("--serve", url, "--tmp", tmp), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"the server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---- the browser ------------------------------------------------------------------------

READY = "return !!(window.MapService && MapService.oneMap && MapService.oneMap.firstReadyAt)"
RESOURCES = """return performance.getEntriesByType('navigation').concat(
  performance.getEntriesByType('resource')).map(function (e) {
    return [e.name, e.encodedBodySize, e.transferSize, e.startTime, e.responseEnd]; });"""
PHASES = """var n = performance.getEntriesByType('navigation')[0];
return [n.responseEnd, n.domContentLoadedEventEnd];"""


def drawn(driver: Any, timeout: float = 60) -> tuple[float, int]:
    """Seconds from navigation to the clusters drawn, and how many venues they hold."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(READY))
    ms, count = driver.execute_script(
        "return [MapService.oneMap.firstReadyAt, MapService.oneMap.drawnCount()]"
    )
    return ms / 1000, count


def block_the_network(driver: Any, offline: bool) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    # As the browser tests do; what is not blocked here but leaves the loopback origin shows
    # up among the resources, which must be exactly those counted.
    driver.execute_cdp_cmd(
        "Network.setBlockedURLs", {"urls": ["https://*", "http://*.com/*", "http://*.cn/*"]}
    )
    if offline:
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )


def browser_map(url: str, tmp: str, venues: int, cold_runs: int, warm_runs: int) -> dict[str, Any]:
    """``/map`` from a freshly started server on a fresh profile, ``cold_runs`` times; warm
    reloads in the first browser."""
    from tests.browser import chromium

    cold: list[float] = []
    warm: list[float] = []
    fetched: list[list[Any]] = []
    phases: list[dict[str, float]] = []
    for run in range(cold_runs):
        with fresh_server(url, tmp) as base, chromium(1280, 900) as driver:
            block_the_network(driver, offline=False)
            driver.get(f"{base}/map")
            seconds, count = drawn(driver)
            if count != venues:
                raise SystemExit(f"/map drew {count} venues of {venues}")
            cold.append(seconds)
            resources = driver.execute_script(RESOURCES)
            page_end, dom_ready = driver.execute_script(PHASES)
            data = [r for r in resources if "/map/data.json" in r[0]]
            phases.append(
                {
                    "page_s": page_end / 1000,
                    "dom_ready_s": dom_ready / 1000,
                    "data_requested_s": data[0][3] / 1000 if data else float("nan"),
                    "data_arrived_s": data[0][4] / 1000 if data else float("nan"),
                    "drawn_s": seconds,
                }
            )
            if run == 0:
                fetched = resources
                for _ in range(warm_runs):
                    driver.get(f"{base}/map")
                    warm.append(drawn(driver)[0])
    origin = re.compile(r"^http://127\.0\.0\.1:\d+")
    resources = [[origin.sub("", r[0]), r[1], r[2]] for r in fetched]
    return {"cold_s": cold, "warm_s": warm, "resources": resources, "phases": phases}


def browser_file(path: Path, venues: int, cold_runs: int, warm_runs: int) -> dict[str, Any]:
    """The exported file opened from disk with the network off, on a fresh profile each time;
    warm reloads in the first browser."""
    from tests.browser import chromium

    cold: list[float] = []
    warm: list[float] = []
    for run in range(cold_runs):
        with chromium(1280, 900) as driver:
            block_the_network(driver, offline=True)
            driver.get(path.as_uri())
            seconds, count = drawn(driver)
            if count != venues:
                raise SystemExit(f"the exported file drew {count} venues of {venues}")
            outside = [
                name
                for name, *_sizes in driver.execute_script(RESOURCES)
                if not name.startswith(("data:", "file:"))
            ]
            if outside:
                raise SystemExit(f"the exported file fetched {outside}")
            cold.append(seconds)
            if run == 0:
                for _ in range(warm_runs):
                    driver.get(path.as_uri())
                    warm.append(drawn(driver)[0])
    return {"cold_s": cold, "warm_s": warm}


def export_file(url: str, tmp: str, out: Path) -> float:
    """``mapservice map export --format html`` as a user runs it; its wall time."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MAPSERVICE_INSTANCE": tmp,
        "MAPSERVICE_SECRET_KEY": "bench",
    }
    cli = Path(sys.executable).with_name("mapservice")
    cmd = [str(cli), "map", "export", "--format", "html", "--output", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "--committee", COMMITTEE], env=env, capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"map export failed: {proc.stderr.strip()[-800:]}")
    return seconds


# ---- the run ----------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def seconds_list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venues", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5, help="warm requests per figure")
    parser.add_argument("--starts", type=int, default=3, help="fresh server processes timed")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold Chromium profiles")
    parser.add_argument("--warm-runs", type=int, default=3, help="warm reloads")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--no-targets", action="store_true", help="judge no target (smoke)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, args.tmp, args.repeat, args.check)))
        return 0
    if args.serve:
        serve(args.serve, args.tmp)
        return 0

    from mapservice.migrate import upgrade
    from mapservice.web.compress import gzip_bytes

    judged = not args.no_targets
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="mapservice-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        t0 = time.perf_counter()
        populate(url, args.venues)
        print(
            f"setup: {args.venues} venues bulk-inserted in {time.perf_counter() - t0:.2f} s;"
            f" load average at start {load_at_start}",
            flush=True,
        )

        # Server side: each start a new process, ours first (uncached), then the naive page.
        probes = [run_probe(url, tmp, args.repeat, check=(k == 0)) for k in range(args.starts)]
        p0 = probes[0]
        if p0["venues"] != args.venues:
            raise SystemExit(f"/map/data.json holds {p0['venues']} venues of {args.venues}")
        if not all(p["folium_imported_at_start"] for p in probes):
            raise SystemExit("folium was not imported by create_app: the first request pays it")
        if any(p["data_cache_entries_at_start"] for p in probes):
            raise SystemExit("the data cache was not empty in a freshly started app")

        def across(*keys: str) -> float:
            """The median over the starts of one probe figure."""
            values = []
            for p in probes:
                v: Any = p
                for k in keys:
                    v = v[k]
                values.append(v)
            return med(values)

        uncached = [p["uncached_s"]["shell"] + p["uncached_s"]["data"] for p in probes]
        warm = [p["warm_median_s"]["shell"] + p["warm_median_s"]["data"] for p in probes]
        naive = [p["naive_s"] for p in probes]
        # One round per fresh process: ours (uncached) then the naive page, in that process.
        server_rounds = [n / u for n, u in zip(naive, uncached, strict=True)]
        server_ratio = med(server_rounds)
        server_verdict = verdict("map_server_uncached_ratio", server_rounds, judged)
        print(
            f"server time, uncached (first /map + first data.json of a freshly started app,"
            f" folium imported at start; median of {args.starts} starts:"
            f" {seconds_list(uncached)}): ours {med(uncached):.3f} s"
            f" (page {across('uncached_s', 'shell'):.3f} + data {across('uncached_s', 'data'):.3f})"
            f" | naive folium {med(naive):.2f} s (once per start: {seconds_list(naive)})"
            f" | naive/ours {server_ratio:.1f}x (median of"
            f" {', '.join(f'{r:.1f}x' for r in server_rounds)}) {server_verdict}"
            f" | warm, median of {args.repeat}: ours {med(warm):.3f} s"
            f" (page {across('warm_median_s', 'shell'):.3f}"
            f" + data {across('warm_median_s', 'data'):.3f}),"
            f" naive/ours {med(naive) / med(warm):.0f}x"
            f" | start-up (create_app, folium imported) {across('startup_s'):.2f} s"
            f" | data built from the database {across('data_cache_miss_median_s'):.3f} s,"
            f" the GeoJSON {across('geojson_cache_miss_median_s'):.3f} s",
            flush=True,
        )

        # Bytes: the page, its data and our scripts and styles it loads; libraries apart.
        assets = p0["assets_bytes"]
        own = {k: v for k, v in assets.items() if is_ours(k)}
        vendored = {k: v for k, v in assets.items() if not is_ours(k)}
        first_visit = p0["shell_gzip_bytes"] + p0["data_gzip_bytes"] + sum(own.values())
        with_libraries = first_visit + sum(vendored.values())
        naive_gz = p0["naive_gzip_bytes"]
        bytes_ratio = naive_gz / first_visit
        print(
            f"bytes gzipped, first visit: ours {first_visit / 1e3:.1f} kB (page with its map"
            f" code and boundaries {p0['shell_gzip_bytes'] / 1e3:.1f} + data"
            f" {p0['data_gzip_bytes'] / 1e3:.1f} + "
            + " + ".join(f"{k.rsplit('/', 1)[-1]} {v / 1e3:.1f}" for k, v in own.items())
            + f") | naive folium {naive_gz / 1e6:.3f} MB ({p0['naive_raw_bytes'] / 1e6:.2f} MB"
            f" raw) | naive/ours {bytes_ratio:.1f}x"
            f" {verdict('map_first_visit_ratio', bytes_ratio, judged)}"
            f" | vendored libraries {sum(vendored.values()) / 1e3:.0f} kB"
            f" ({', '.join(dict.fromkeys(k.split('/')[2] for k in vendored))};"
            " folium's come from CDNs and are"
            f" not counted either; counted on our side alone: {naive_gz / with_libraries:.1f}x)"
            f" | each popup then fetches its details: {p0['popup_gzip_bytes']} bytes,"
            f" {p0['popup_median_s'] * 1000:.1f} ms",
            flush=True,
        )
        print(
            f"data endpoint: {p0['data_gzip_bytes'] / 1e3:.0f} kB gzipped,"
            f" {p0['data_raw_bytes'] / 1e3:.0f} kB raw, {p0['venues']} venues, same as the"
            f" GeoJSON's ({p0['geojson_gzip_bytes'] / 1e3:.0f} kB gzipped,"
            f" {p0['geojson_raw_bytes'] / 1e3:.0f} kB raw)",
            flush=True,
        )

        # The offline file, as the command line writes it.
        out = Path(tmp) / "one-map.html"
        export_s = export_file(url, tmp, out)
        html = out.read_bytes()
        export_gz = len(gzip_bytes(html))
        export_mb = export_gz / 1e6

        results: dict[str, Any] = {
            "venues": args.venues,
            "machine": platform.platform(),
            "python": platform.python_version(),
            "load_at_start": load_at_start,
            "probes": probes,
            "server": {
                "uncached_s": uncached,
                "warm_s": warm,
                "naive_s": naive,
                "naive_over_uncached": server_ratio,
            },
            "bytes": {
                "first_visit_gzip": first_visit,
                "own_assets": own,
                "vendored_assets": vendored,
                "naive_gzip": naive_gz,
                "naive_over_first_visit": bytes_ratio,
            },
            "export": {"raw_bytes": len(html), "gzip_bytes": export_gz, "command_s": export_s},
        }
        figures: dict[str, float | list[float] | None] = {
            "map_server_uncached_ratio": server_rounds,
            "map_first_visit_ratio": bytes_ratio,
            "map_cold_drawn_s": None,
            "map_export_gzip_mb": export_mb,
            "map_export_drawn_s": None,
        }
        if not args.no_browser:
            page = browser_map(url, tmp, args.venues, args.cold_runs, args.warm_runs)
            results["chromium_map"] = page
            counted = {"/map", p0["data_path"], *assets}
            # /favicon.ico: Chromium asks for it by itself (a 404 here), as on any page.
            names = [n for n, _size, _t in page["resources"] if n != "/favicon.ico"]
            seen = set(names)
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise SystemExit(f"the page fetched {twice} more than once")
            if counted != seen:
                raise SystemExit(
                    f"the page fetched what was not counted: {sorted(seen - counted)};"
                    f" counted what it did not fetch: {sorted(counted - seen)}"
                )
            chromium_own = sum(
                size for name, size, _t in page["resources"] if name in seen and is_ours(name)
            )
            figures["map_cold_drawn_s"] = page["cold_s"]
            print(
                f"headless Chromium, navigation to clusters drawn ({args.venues} venues), cold"
                f" (fresh profile, freshly started server, first load): {med(page['cold_s']):.2f} s"
                f" (median of {seconds_list(page['cold_s'])})"
                f" {verdict('map_cold_drawn_s', page['cold_s'], judged)}"
                + (
                    f" | warm reloads {med(page['warm_s']):.2f} s"
                    f" (median of {seconds_list(page['warm_s'])})"
                    if page["warm_s"]
                    else ""
                )
                + " | where the cold time goes (median): page answered "
                + " s, ".join(
                    f"{k} {med([p[v] for p in page['phases']]):.2f}"
                    for k, v in (
                        ("", "page_s"),
                        ("DOM ready", "dom_ready_s"),
                        ("data requested", "data_requested_s"),
                        ("data arrived", "data_arrived_s"),
                        ("drawn", "drawn_s"),
                    )
                ).lstrip()
                + " s"
                + f" | it fetched exactly what was counted ({len(seen)} requests; ours as"
                f" Chromium counted them {chromium_own / 1e3:.1f} kB) | naive folium: not"
                " measurable offline, its page loads Leaflet from a CDN",
                flush=True,
            )
            disk = browser_file(out, args.venues, args.cold_runs, args.warm_runs)
            results["chromium_file"] = disk
            figures["map_export_drawn_s"] = disk["cold_s"]
        print(
            f"exported file (mapservice map export --format html, {args.venues} venues with"
            f" their popup text): {export_mb:.3f} MB gzipped"
            f" {verdict('map_export_gzip_mb', export_mb, judged)}, {len(html) / 1e6:.2f} MB raw,"
            f" the command {export_s:.1f} s"
            + (
                f" | opened from disk (file://, network off), cold profile: drawn in"
                f" {med(disk['cold_s']):.2f} s (median of {seconds_list(disk['cold_s'])})"
                f" {verdict('map_export_drawn_s', disk['cold_s'], judged)}"
                + (f", warm reloads {med(disk['warm_s']):.2f} s" if disk["warm_s"] else "")
                + f" | naive folium page {naive_gz / 1e6:.3f} MB gzipped"
                if not args.no_browser
                else " | not opened (--no-browser)"
            ),
            flush=True,
        )
        misses = missed(figures) if judged else []
        load_at_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
        results.update(figures=figures, missed=misses, load_at_end=load_at_end)
        print(
            ("targets: " + ("MISSED: " + "; ".join(misses) if misses else "all met"))
            if judged
            else "targets: not judged (--no-targets)",
            flush=True,
        )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"written: {args.output}")
    return MISSED_EXIT if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
