"""A base map on an intranet (issue 18, item 5): ``MAPSERVICE_TILES=mbtiles:PATH`` serves the
raster tiles of an MBTiles file the test writes at ``/tiles/Z/X/Y``; a file that is missing or
not raster MBTiles stops the start with one line."""

from __future__ import annotations

import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from mapservice.core import mapdata
from mapservice.core.i18n import _, use_locale
from mapservice.core.mbtiles import MBTilesError, open_mbtiles
from mapservice.maps import one_map
from tests.test_cli import Cli, one_line_reason
from tests.test_maps_builders import _areas


def png(r: int, g: int, b: int) -> bytes:
    """A 1×1 PNG of one colour (each tile different, to tell them apart)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, r, g, b]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def write_mbtiles(path: Path, fmt: str = "png") -> dict[tuple[int, int, int], bytes]:
    """Zoom 0 and 1, every tile a different colour; rows stored TMS-style (from the south).
    Returns the tiles by XYZ (rows from the north, as Leaflet asks)."""
    tiles: dict[tuple[int, int, int], bytes] = {(0, 0, 0): png(0, 0, 0)}
    for x in range(2):
        for y in range(2):
            tiles[(1, x, y)] = png(40 + 100 * x, 40 + 100 * y, 200)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,"
            " tile_data BLOB)"
        )
        db.executemany(
            "INSERT INTO metadata VALUES (?, ?)",
            [("name", "润州 <b>底图</b>"), ("format", fmt), ("attribution", "<img src=x>")],
        )
        db.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            [(z, x, (1 << z) - 1 - y, data) for (z, x, y), data in tiles.items()],
        )
    db.close()
    return tiles


@pytest.fixture
def mbtiles(tmp_path: Path) -> tuple[Path, dict[tuple[int, int, int], bytes]]:
    path = tmp_path / "Runzhou Base.mbtiles"
    return path, write_mbtiles(path)


@pytest.fixture
def tiles_app(db: Any, database_url: str, tmp_path: Path, mbtiles: Any) -> Any:
    from mapservice import create_app

    application = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "INSTANCE_PATH": tmp_path,
            "MAPSERVICE_TILES": f"mbtiles:{mbtiles[0]},none",
        }
    )
    yield application
    application.extensions["db_engine"].dispose()


def test_the_app_serves_the_files_tiles_by_xyz(tiles_app: Any, mbtiles: Any) -> None:
    client = tiles_app.test_client()
    _path, tiles = mbtiles
    for (z, x, y), data in tiles.items():
        response = client.get(f"/tiles/{z}/{x}/{y}")
        assert response.status_code == 200, (z, x, y)
        assert response.data == data and response.mimetype == "image/png"
        assert "max-age=86400" in response.headers["Cache-Control"]
        again = client.get(
            f"/tiles/{z}/{x}/{y}", headers={"If-None-Match": response.headers["ETag"]}
        )
        assert again.status_code == 304
    for z, x, y in ((2, 0, 0), (1, 2, 0), (1, 0, 5), (31, 0, 0)):
        assert client.get(f"/tiles/{z}/{x}/{y}").status_code == 404
    # The images come from the app: the CSP needs no other origin for them.
    csp = client.get("/tiles/0/0/0").headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob:;" in csp


def test_without_a_file_there_are_no_tiles(client: Any) -> None:
    assert client.get("/tiles/0/0/0").status_code == 404


def test_the_setting_names_the_file_and_the_base_map(mbtiles: Any) -> None:
    path = mbtiles[0]
    setting = f"osm, MBTiles:{path} ,none"
    assert mapdata.mbtiles_path(setting) == str(path)  # the path's case is kept
    layers = mapdata.tile_layers(setting, lang="en")
    assert [t.key for t in layers] == ["osm", "mbtiles", "none"]
    local = layers[1]
    assert (local.url, local.crs, local.name) == ("/tiles/{z}/{x}/{y}", "wgs84", "Local base map")
    assert mapdata.tile_layers(f"mbtiles:{path}")[0].name == "本地底图"
    assert mapdata.mbtiles_path("osm,none") is None


def test_the_folium_map_draws_the_local_base_map(mbtiles: Any) -> None:
    m = one_map(
        areas=_areas(),
        tiles=mapdata.tile_layers(f"mbtiles:{mbtiles[0]},none"),
        data_url="/map/data.json",
        assets="/vendor",
    )
    html = m.get_root().render()
    assert '"/tiles/{z}/{x}/{y}"' in html and "L.control.layers(" in html
    # The file's own metadata (name, attribution: HTML by the spec) never reaches the page.
    assert "<img src=x>" not in html and "底图</b>" not in html


def test_the_picker_page_config_and_map_page_name_the_local_tiles(
    tiles_app: Any, make: Any
) -> None:
    make.committee()
    page = tiles_app.test_client().get("/map?committee=runzhou").get_data(as_text=True)
    assert "/tiles/{z}/{x}/{y}" in page
    # The file holds zooms 0 and 1: Leaflet stretches those beyond them instead of asking for
    # tiles the file does not have (every request past zoom 1 would be a 404 and a grey map).
    assert '"maxNativeZoom": 1' in page and '"minNativeZoom": 0' in page


@pytest.mark.parametrize(
    "write, reason",
    [
        (None, "does not exist"),
        (lambda p: p.write_text("not sqlite", encoding="utf-8"), "is not an MBTiles file"),
        (
            lambda p: sqlite3.connect(p).execute("CREATE TABLE x (a)").connection.commit(),
            "is not an MBTiles file",
        ),
        (lambda p: write_mbtiles(p, fmt="pbf"), "only raster tiles"),
    ],
)
def test_an_unusable_file_is_one_line(tmp_path: Path, write: Any, reason: str) -> None:
    path = tmp_path / "base.mbtiles"
    if write is not None:
        write(path)
    with use_locale("en"), pytest.raises(MBTilesError) as caught:
        open_mbtiles(path)
    assert reason in caught.value.message and str(path) in caught.value.message
    assert "\n" not in caught.value.message


def test_the_console_says_why_the_app_cannot_start(
    db: Any, database_url: str, tmp_path: Path
) -> None:
    cli = Cli(database_url, tmp_path)
    missing = tmp_path / "gone.mbtiles"
    cli.env["MAPSERVICE_TILES"] = f"mbtiles:{missing},none"
    reason = one_line_reason(cli("map", "export", "--output", str(tmp_path / "m.html")))
    with use_locale("zh_CN"):
        expected = _("The MBTiles file %(path)s does not exist.", path=str(missing))
    assert reason == f"Error: {expected}"
    assert not (tmp_path / "m.html").exists()
