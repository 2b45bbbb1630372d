"""``mapservice map export --format html``: the one map as one file that opens offline (issue 18,
item 4). The file shows the public venues under the filter, with their popup text; bad
filters and unwritable paths are one line in the user's language and leave nothing behind."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import RUNZHOU_POINT
from tests.test_cli import Cli, one_line_reason
from tests.test_maps_builders import PAYLOADS


@pytest.fixture
def cli(db: Any, database_url: str, tmp_path: Path) -> Cli:
    return Cli(database_url, tmp_path)


@pytest.fixture
def venues(make: Any) -> dict[str, Any]:
    committee = make.committee()
    unit = make.unit(committee, "单位" + PAYLOADS[0])
    shown = [
        make.venue(
            unit, name="场地" + p, address="地址" + p, type="gym", lon=RUNZHOU_POINT[0] + i / 2000
        )
        for i, p in enumerate(PAYLOADS)
    ]
    court = make.venue(unit, name="羽毛球馆", type="badminton", capacity_units=3)
    hidden = make.venue(unit, name="未发布", published=False)
    applied = make.unit(committee, "待审单位")
    other = make.venue(applied, name="待审场地")
    applied.status = "applied"  # not admitted (any more): its venues are off the public map
    make.session.commit()
    return {"shown": [*shown, court], "hidden": [hidden, other], "committee": committee}


def _columns(html: str) -> dict[str, Any]:
    # The last call: the inlined venue-layer.js names the function in its own comment.
    call = [*re.finditer(r"MapService\.venueLayer\(\s*\w+,\s*", html)][-1]
    options, _end = json.JSONDecoder().raw_decode(html, call.end())
    return dict(options["columns"])


def test_the_file_holds_the_public_venues_and_their_popup_text(cli: Cli, venues: Any, tmp_path):
    out = tmp_path / "一张图.html"
    result = cli("map", "export", "--format", "html", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert f"({len(venues['shown'])} venues, html)" in result.output
    html = out.read_text(encoding="utf-8")
    columns = _columns(html)
    assert sorted(columns["name"]) == sorted(v.name for v in venues["shown"])
    assert {"未发布", "待审场地"}.isdisjoint(columns["name"])
    assert "地址" + PAYLOADS[4] in columns["address"]
    assert "<script src=" not in html and "<link" not in html
    assert out.stat().st_mode & 0o044 == 0o044  # readable like any file, not mkstemp's 0600
    assert list(tmp_path.glob(".*.tmp")) == []


def test_the_filter_is_the_maps(cli: Cli, venues: Any, tmp_path: Path) -> None:
    out = tmp_path / "courts.html"
    result = cli("map", "export", "--output", str(out), "--type", "badminton", "--min-units", "2")
    assert result.exit_code == 0, result.output
    assert _columns(out.read_text(encoding="utf-8"))["name"] == ["羽毛球馆"]


@pytest.mark.parametrize(
    "args, field",
    [
        (("--type", "tennis"), "types"),
        (("--unit", "999999"), "unit"),
        (("--street", "x"), "street"),
        (("--near", "500,1"), "near"),
        (("--min-units", "0"), "min_units"),
    ],
)
def test_bad_filters_are_one_line_and_write_nothing(
    cli: Cli, venues: Any, tmp_path: Path, args: tuple[str, ...], field: str
) -> None:
    out = tmp_path / "map.html"
    reason = one_line_reason(cli("map", "export", "--output", str(out), *args))
    assert f"{field}:" in reason
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_unwritable_path_is_one_line_and_leaves_nothing(
    cli: Cli, venues: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-dir" / "map.html"
    reason = one_line_reason(cli("map", "export", "--output", str(missing)))
    assert str(missing) in reason
    assert not missing.parent.exists()
    # A write that fails at the end (disk full, …) keeps the old file whole, and no
    # temporary file stays behind.
    existing = tmp_path / "old.html"
    existing.write_text("old", encoding="utf-8")

    def full(_src: Any, _dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mapservice.operations.map_export.os.replace", full)
    reason = one_line_reason(cli("map", "export", "--output", str(existing)))
    assert str(existing) in reason and "No space left on device" in reason
    assert existing.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.html"]


@pytest.mark.browser
@pytest.mark.sqlite_only  # see conftest.SQLITE_ONLY
def test_the_file_opens_offline_and_shows_every_public_venue(
    cli: Cli, venues: Any, tmp_path: Path
) -> None:
    from tests.browser import chromium

    out = tmp_path / "map.html"
    assert cli("map", "export", "--output", str(out)).exit_code == 0
    html = out.read_text(encoding="utf-8")
    trap = "<script>window.__alerts=0;window.alert=function(){window.__alerts+=1};</script>"
    out.write_text(html.replace("<head>", "<head>" + trap, 1), encoding="utf-8")
    with chromium(1280, 900) as driver:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        driver.get(out.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return !!(window.MapService && MapService.oneMap && MapService.oneMap.ready)"
            )
        )
        drawn = driver.execute_script("return MapService.oneMap.drawnCount()")
        assert drawn == len(venues["shown"])
        # Every hostile name and address (issue 18's literal strings) is text in its popup.
        for venue in venues["shown"][: len(PAYLOADS)]:
            driver.execute_script("MapService.oneMap.openVenue(arguments[0])", venue.id)
            WebDriverWait(driver, 10).until(
                lambda d, v=venue: d.execute_script(
                    "var n = document.querySelector('.venue-popup .popup-name');"
                    "return n !== null && n.textContent === arguments[0]",
                    v.name,
                ),
            )
            popup = driver.find_element(By.CSS_SELECTOR, ".venue-popup")
            assert (
                popup.find_element(By.CSS_SELECTOR, ".popup-address")
                .get_attribute("textContent")
                .endswith(venue.address)
            )
            assert not popup.find_elements(By.CSS_SELECTOR, "img, script")
        assert driver.execute_script("return window.__alerts") == 0


def test_the_map_page_offers_the_file_with_its_filter(client: Any, venues: Any) -> None:
    page = client.get("/map?committee=runzhou&types=gym").get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)" id="download-html"', page)
    assert link is not None and "types=gym" in link.group(1)
    response = client.get(link.group(1).replace("&amp;", "&"), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="map-')
    assert response.headers["Content-Encoding"] == "gzip"
    import gzip

    html = gzip.decompress(response.data).decode()
    names = _columns(html)["name"]
    assert sorted(names) == sorted(v.name for v in venues["shown"] if v.type == "gym")
    bad = client.get("/map/export.html?committee=runzhou&types=tennis")
    assert bad.status_code in (400, 422)
