"""The folium maps' code runs under the app's Content-Security-Policy as one inline script the
response names by its SHA-256 (``web.security.allow_inline_script``; issue 18, docs/maps.md):
the header names it for that response only, and in Chromium that script runs while any other
inline script (an injected one) still does not."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Response

from mapservice.core import mapdata
from mapservice.maps import one_map
from mapservice.maps.page import page_parts
from mapservice.web.security import allow_inline_script
from tests.test_maps_builders import _areas, _columns


def _page(parts: Any) -> str:
    return (
        "<!doctype html><html><head>"
        + "".join(f'<link rel="stylesheet" href="{u}">' for u in parts.styles)
        + parts.head
        + "".join(f'<script src="{u}"></script>' for u in parts.scripts)
        + '</head><body><div id="one-map" style="height:400px">'
        + parts.html
        + "</div><script>window.injected = true;</script>"
        + f"<script>{parts.script}</script></body></html>"
    )


@pytest.fixture
def csp_app(app: Any) -> Any:
    m = one_map(
        areas=_areas(),
        tiles=mapdata.tile_layers("none"),
        columns=_columns([f"场地{i}" for i in range(20)]),
        assets="/vendor",
    )
    parts = page_parts(m)

    def page() -> Response:
        allow_inline_script(parts.script)
        return Response(_page(parts), mimetype="text/html")

    app.add_url_rule("/test-folium-map", view_func=page)
    app.config["TEST_MAP_PARTS"] = parts
    return app


def test_the_header_names_the_maps_code_for_that_response_only(csp_app: Any) -> None:
    client = csp_app.test_client()
    parts = csp_app.config["TEST_MAP_PARTS"]
    csp = client.get("/test-folium-map").headers["Content-Security-Policy"]
    assert f"script-src 'self' {parts.script_hash};" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    other = client.get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self';" in other and "sha256" not in other


@pytest.mark.browser
@pytest.mark.sqlite_only  # see conftest.SQLITE_ONLY
def test_in_chromium_the_maps_code_runs_and_an_injected_script_does_not(csp_app: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import chromium, live_server

    with live_server(csp_app) as base, chromium(1280, 900) as driver:
        driver.get(f"{base}/test-folium-map")
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return !!(window.MapService && MapService.oneMap && MapService.oneMap.ready)"
            )
        )
        assert driver.execute_script("return MapService.oneMap.drawnCount()") == 20
        assert driver.execute_script("return window.injected === undefined")
        refused = [
            e["message"]
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "Content Security Policy" in e["message"]
        ]
        assert len(refused) == 1, refused  # the injected one, nothing of the map's


def test_every_inline_script_of_the_map_pages_is_named_by_their_csp(client: Any, make: Any) -> None:
    """The map pages, the venue page and the picker carry the map's code inline: each inline
    script on them (data blocks aside) is one the response's CSP names by hash, and nothing
    else is."""
    import base64
    import hashlib
    import re

    from tests.conftest import login

    committee = make.committee()
    unit = make.unit(committee)
    make.secretary(unit, username="sec")
    venue = make.venue(unit, name="场地</script><script>alert(1)</script>")
    login(client, "sec")
    paths = (f"/venues/{venue.id}", "/venues/new", f"/venues/{venue.id}/edit")
    for path in (*paths, "/map?committee=runzhou", "/map/embed?committee=runzhou"):
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        inline = re.findall(
            r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", page, re.S
        )
        assert len(inline) == 1, (path, len(inline))
        digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
        script_src = (
            response.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
        )
        assert script_src.split() == ["'self'", f"'sha256-{digest}'"], path


def test_the_built_map_is_reused_only_for_the_same_committee_filter_language_and_venue(
    client: Any, make: Any
) -> None:
    """``/map`` keeps its built folium code a minute (``web.maps.cached_map_parts``): the same
    request gets the same code, still named by the response's CSP; another filter, language or
    permalinked venue gets its own (its data URL, labels and popup to open differ)."""
    import base64
    import hashlib
    import re

    committee = make.committee()
    make.venue(make.unit(committee), name="篮球场")

    def code(path: str) -> str:
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        (script,) = re.findall(
            r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", page, re.S
        )
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in response.headers["Content-Security-Policy"]
        return str(script)

    first = code("/map?committee=runzhou")
    assert code("/map?committee=runzhou") == first
    assert "types=basketball" in code("/map?committee=runzhou&types=basketball")
    assert "types=basketball" not in first
    english = code("/map?committee=runzhou&lang=en")
    assert english != first and "Full screen" in english and "Full screen" not in first
    assert code("/map?committee=runzhou&venue=5") != first
