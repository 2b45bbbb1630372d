"""The folium-built maps (``mapservice.maps``, issue 18): every builder renders, loads nothing
from outside the app, and hostile venue, unit and street names reach the page only as data.

String-level checks on the rendered HTML (no browser): what a script could run is looked for
in the ``<script>`` text itself. The Chromium checks of the same payloads come with the pages.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import folium
import pytest

from mapservice.core import geo, mapdata
from mapservice.core.mapfilter import Match, VenueFacts
from mapservice.maps import assets, one_map, picker_map, venue_map
from mapservice.maps.assets import ASSETS, DROPPED, UnknownAsset, asset_path, localize
from mapservice.maps.plugins import VenueLayer

GEODATA = Path(__file__).resolve().parent.parent / "geodata" / "runzhou"
PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "${alert(2)}",
    "a`b",
    "Hall\\`);alert(3)//",
    "</script><script>alert(5)</script>",
]
TILES = "osm,tianditu,amap,none"


def _areas(hostile: str = "") -> list[tuple[int, str, str, bool, dict[str, Any]]]:
    rows: list[tuple[int, str, str, bool, dict[str, Any]]] = []
    for level, name in (("district", "district.geojson"), ("street", "streets.geojson")):
        for area in geo.read_areas(GEODATA / name, level=level):
            shape = area.geometry
            geometry = shape if isinstance(shape, dict) else shape.__geo_interface__
            rows.append((len(rows) + 1, area.name + hostile, level, area.approximate, geometry))
    return rows


def _columns(
    names: list[str], crs: str = "wgs84", near: tuple[float, float] | None = None
) -> dict[str, Any]:
    matches = [
        Match(
            VenueFacts(
                id=i + 1,
                name=name,
                unit_id=1 + i % 2,
                unit_name=f"单位{name}",
                type="badminton" if i % 2 else "youth_home",
                lon=119.42 + i * 0.001,
                lat=32.2 + i * 0.001,
            )
        )
        for i, name in enumerate(names)
    ]
    return mapdata.venue_columns(matches, crs, near)


def _tiles() -> list[mapdata.TileLayer]:
    return mapdata.tile_layers(TILES, "KEY")


def _builds(hostile: str = "") -> dict[str, folium.Map]:
    names = [p for p in PAYLOADS] + ["场地" + hostile]
    return {
        "one_map_url": one_map(
            areas=_areas(hostile),
            tiles=_tiles(),
            data_url="/map/data.json?committee=runzhou",
            venue_url="/venues/",
            popup_url="/map/venues/",
            free_url="/map/venues/",
            venue=3,
            assets="/vendor",
        ),
        "one_map_embedded": one_map(
            areas=_areas(hostile), tiles=_tiles(), columns=_columns(names), assets="/vendor"
        ),
        "venue_map": venue_map(
            areas=_areas(hostile), tiles=_tiles(), point=(119.45, 32.2), assets="/vendor"
        ),
        "picker_map": picker_map(
            areas=_areas(hostile),
            tiles=_tiles(),
            point=(119.45, 32.2),
            nearby=_columns(names),
            assets="/vendor",
        ),
        "picker_map_no_tiles": picker_map(areas=_areas(hostile), tiles=[], assets="/vendor"),
    }


class _Links(HTMLParser):
    """Every URL-bearing attribute and every script's text."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "poster", "data") and value is not None:
                self.urls.append((tag, name, value))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _parse(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def _tile_templates() -> set[str]:
    return {t.url for t in _tiles() if t.url}


def _unescape_js(text: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


@pytest.mark.parametrize("name", list(_builds()))
def test_every_asset_is_served_by_the_app(name: str) -> None:
    html = _builds()[name].get_root().render()
    page = _parse(html)
    loaded = [(tag, url) for tag, attr, url in page.urls if tag in ("script", "link")]
    assert any(url == "/vendor/leaflet/leaflet.js" for _tag, url in loaded), loaded
    for _tag, url in loaded:
        if url.startswith("/map/data.json?"):
            continue  # the venue layer's data, preloaded (<link rel="preload">): the app's
        assert url.startswith("/vendor/"), url
        package, _, filename = url.removeprefix("/vendor/").partition("/")
        path = asset_path(assets.Asset(package, filename))
        assert path.is_file(), f"{url}: {path} is not installed (make assets)"
    # Nowhere in the document (attributes, scripts, styles) an http(s) URL, except the
    # configured tile URL templates (the images the CSP allows).
    allowed = _tile_templates()
    for found in re.findall(r"""https?://[^\s"'<>)\\]+(?:\\u0026[^\s"'<>)\\]+)*""", html):
        url = _unescape_js(found)
        assert any(url == t for t in allowed), f"{name} names {url}"
    # What folium loads by default and the maps do not need is gone.
    for gone in ("jquery", "bootstrap", "glyphicons", "awesome", "fontawesome"):
        assert gone not in html.lower(), gone


def test_the_tile_templates_are_the_configured_ones() -> None:
    html = _builds()["one_map_url"].get_root().render()
    for template in _tile_templates():
        assert json.dumps(template).replace("&", "\\u0026") in html


def test_an_asset_with_no_local_file_is_refused() -> None:
    m = folium.Map(tiles=None)
    folium.plugins.MiniMap().add_to(m)
    with pytest.raises(UnknownAsset, match="MiniMap"):
        localize(m, "/vendor")


@pytest.mark.parametrize(
    "element",
    [
        lambda: folium.Marker([32.2, 119.4], popup="x"),
        lambda: folium.Marker([32.2, 119.4], icon=folium.Icon()),
    ],
)
def test_elements_that_need_the_dropped_libraries_are_refused(element: Any) -> None:
    m = folium.Map(tiles=None)
    element().add_to(m)
    with pytest.raises(UnknownAsset):
        localize(m, "/vendor")


def test_localize_leaves_folium_classes_alone() -> None:
    """folium's own add_js_link edits the class list every Map shares; ours must not."""
    before = list(folium.Map.default_js)
    localize(folium.Map(tiles=None), "/vendor")
    assert folium.Map.default_js == before
    assert folium.Map.default_js[0][1].startswith("https://")


def test_every_known_asset_is_installed() -> None:
    for name, asset in ASSETS.items():
        assert asset_path(asset).is_file(), (name, asset)
    assert not DROPPED & set(ASSETS)


def test_a_url_function_and_a_base_path_agree() -> None:
    a = _builds()["venue_map"].get_root().render()
    m = venue_map(
        areas=_areas(),
        tiles=_tiles(),
        point=(119.45, 32.2),
        assets=lambda asset: f"/vendor/{asset.package}/{asset.filename}",
    )
    b = m.get_root().render()
    assert _parse(a).urls == _parse(b).urls


# ---- injection ------------------------------------------------------------------------


def _script_text(m: folium.Map) -> tuple[str, list[str]]:
    html = m.get_root().render()
    return html, _parse(html).scripts


#: A JSON (double-quoted) string literal, escapes included.
JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


@pytest.mark.parametrize("name", list(_builds()))
def test_hostile_names_stay_data(name: str) -> None:
    html, scripts = _script_text(_builds(PAYLOADS[0] + PAYLOADS[4])[name])
    for script in scripts:
        # Nothing ends a script early or opens markup inside one (JSON escapes < > & ').
        assert "</script" not in script.lower() and "<!--" not in script and "<img" not in script
        # Outside the JSON string literals, the code is ours: no payload, and no template
        # literal at all (so a ${…} or a backslash-backtick has nothing to run in).
        code = JSON_STRING.sub('""', script)
        for needle in ("alert", "onerror", "`"):
            assert needle not in code, (name, needle)
    # Outside the scripts, the only markup is folium's and ours.
    assert "<img" not in html
    assert html.count("<script") == html.count("</script>")


def test_hostile_names_arrive_intact_as_json() -> None:
    m = _builds()["one_map_embedded"]
    (layer,) = [e for e in assets.elements(m) if isinstance(e, VenueLayer)]
    html = m.get_root().render()
    call = re.search(r"MapService\.venueLayer\(\s*\w+,\s*", html)
    assert call is not None
    options, _end = json.JSONDecoder().raw_decode(html, call.end())
    assert options["columns"]["name"][: len(PAYLOADS)] == PAYLOADS
    assert options == json.loads(json.dumps(layer.options))


def test_boundary_tooltips_are_text_nodes() -> None:
    html = _builds(PAYLOADS[1])["venue_map"].get_root().render()
    assert "span.textContent = String(p.name)" in html
    assert "GeoJsonTooltip" not in html and "innerHTML" not in html


def test_the_venue_layer_script_never_writes_html() -> None:
    script = (assets.OWN_FILES / "venue-layer.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", script, flags=re.S)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "`"):
        assert sink not in code, sink


# ---- what the builders draw -------------------------------------------------------------


def test_the_one_map_has_every_part() -> None:
    m = _builds()["one_map_url"]
    kinds = {type(e).__name__ for e in assets.elements(m)}
    assert {
        "Map",
        "TileLayer",
        "FeatureGroup",
        "GeoJson",
        "LayerControl",
        "Fullscreen",
        "LocateControl",
        "VenueLayer",
    } <= kinds
    tile_names = [e.layer_name for e in assets.elements(m) if isinstance(e, folium.TileLayer)]
    assert tile_names == ["OpenStreetMap", "天地图", "高德地图"]
    # A boundary layer per coordinate system the base maps need; the first one shown.
    geo_layers = [e for e in assets.elements(m) if isinstance(e, folium.GeoJson)]
    assert [g.show for g in geo_layers] == [True, False]
    html = m.get_root().render()
    assert '"mapserviceCrs": "gcj02"' in html
    assert "fitBounds" in html
    assert '"maxZoom": 19' in html


def test_one_base_map_has_no_layer_control() -> None:
    m = one_map(areas=_areas(), tiles=mapdata.tile_layers("none"), data_url="/d", assets="/v")
    kinds = {type(e).__name__ for e in assets.elements(m)}
    assert "LayerControl" not in kinds and "Legend" not in kinds


def test_the_picker_and_the_venue_map_publish_their_maps() -> None:
    picker = picker_map(areas=_areas(), tiles=[], assets="/vendor").get_root().render()
    assert '"key": "pick-map"' in picker and '"pick": {' in picker
    venue = venue_map(areas=_areas(), point=(119.45, 32.2), assets="/vendor")
    html = venue.get_root().render()
    assert '"key": "venue-map"' in html and '"point": [119.45, 32.2]' in html


def test_an_amap_first_venue_map_converts_the_point() -> None:
    m = venue_map(areas=_areas(), tiles=mapdata.tile_layers("amap"), point=(119.45, 32.2))
    html = m.get_root().render()
    point = json.loads(re.search(r'"point": (\[[^\]]*\])', html).group(1))  # type: ignore[union-attr]
    assert point != [119.45, 32.2] and abs(point[0] - 119.45) < 0.01


def test_a_venue_layer_reads_one_source() -> None:
    with pytest.raises(ValueError):
        VenueLayer({}, types=[])
    with pytest.raises(ValueError):
        VenueLayer({"dataUrl": "/d", "columns": {}}, types=[])


def test_the_app_serves_every_asset_a_map_loads(client: Any) -> None:
    html = _builds()["one_map_url"].get_root().render()
    html += _builds()["picker_map"].get_root().render()
    urls = {url for tag, _attr, url in _parse(html).urls if tag in ("script", "link")}
    # The preloaded data (the venue layer's dataUrl) is the app's, tested with /map's data.
    urls = {url for url in urls if not url.startswith("/map/data.json?")}
    assert len(urls) >= 10, urls
    for url in sorted(urls):
        response = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, url
        assert response.headers["Content-Type"].split(";")[0] in ("text/javascript", "text/css")
        response.close()
    assert client.get("/vendor/mapservice/../assets.py").status_code == 404


# ---- the standalone file ----------------------------------------------------------------


def test_the_standalone_file_inlines_everything() -> None:
    from mapservice.maps.columns import columns_with_details
    from mapservice.maps.export import standalone_html

    matches = [
        Match(
            VenueFacts(
                id=i + 1,
                name=name,
                unit_id=1,
                unit_name="单位",
                type="gym",
                lon=119.42,
                lat=32.2 + i / 1000,
                address="地址" + name,
            )
        )
        for i, name in enumerate(PAYLOADS)
    ]
    m = one_map(
        areas=_areas(PAYLOADS[4]),
        tiles=mapdata.tile_layers("none"),
        columns=columns_with_details(matches, 0),
    )
    html = standalone_html(m, "一张图 <b>")
    page = _parse(html)
    # No link, no script source, no URL but data URIs (leaflet.css's images).
    assert [u for u in page.urls if u[0] in ("script", "link", "img")] == []
    # (The inlined libraries name their home pages in comments and attribution links; that
    # nothing is fetched is checked in Chromium.)
    assert not re.search(r"url\(['\"]?(https?:)?//", html)
    assert "url(images/" not in html and 'url("data:image/png;base64,' in html
    # branca writes the title unescaped: the export escapes it.
    assert "<title>一张图 &lt;b&gt;</title>" in html
    # Each library once, each script closed where it should be.
    assert html.count("L.Control.Locate") >= 1
    assert html.count("<script") == html.count("</script>")
    for script in page.scripts:
        assert "</script" not in script.lower()


# ---- a page's parts -----------------------------------------------------------------------


def test_page_parts_are_stable_and_fit_the_csp() -> None:
    from mapservice.maps.page import page_parts

    a, b = (page_parts(_builds()["one_map_url"]) for _ in range(2))
    assert a == b and a.script_hash == b.script_hash
    assert a.scripts[0] == "/vendor/leaflet/leaflet.js"
    assert all(u.startswith("/vendor/") for u in a.scripts + a.styles)
    assert "/vendor/mapservice/venue-layer.js" in a.scripts
    # The code is one script to serve from the app: no tag, no inline globals of folium's.
    assert "<script" not in a.script and "L_NO_TOUCH" not in a.script + a.head
    assert "MapService.venueLayer(" in a.script and "var map_0 = L.map(" in a.script
    # The page keeps its layout: no whole-document styles, no viewport that forbids zoom.
    assert "html, body" not in a.head and "user-scalable" not in a.head
    assert a.html.strip() == '<div class="folium-map" id="map_0" ></div>'
    assert ".vt-badminton{background-color:#1e88e5}" in a.head


def test_the_pickers_nearby_venues_come_from_the_map_data_and_keep_the_view() -> None:
    m = picker_map(areas=_areas(), nearby="/map/data.json?committee=runzhou", assets="/vendor")
    (layer,) = [e for e in assets.elements(m) if isinstance(e, VenueLayer)]
    assert layer.options["dataUrl"] == "/map/data.json?committee=runzhou"
    assert layer.options["fit"] is False and layer.options["toggles"] is False
    assert "columns" not in layer.options and "api" not in layer.options
