"""Front-end libraries served by the app itself from the npm packages `make` installs
(``node_modules/``): no page loads anything from a CDN, so the service works on an intranet.
Scripts and styles go out gzipped (compressed once per file version and kept in memory)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from flask import Blueprint, abort, send_from_directory
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from mapservice.config import ROOT
from mapservice.maps.assets import OWN_FILES, OWN_PACKAGE
from mapservice.web.compress import accepts_gzip, gzip_bytes

bp = Blueprint("vendor", __name__)
NODE_MODULES = ROOT / "node_modules"
# Only the distribution folders of the packages we ship, and the folium maps' own scripts
# and styles (mapservice.maps.assets names them all).
ALLOWED = {
    "leaflet": NODE_MODULES / "leaflet/dist",
    "bootstrap": NODE_MODULES / "bootstrap/dist",
    "leaflet.markercluster": NODE_MODULES / "leaflet.markercluster/dist",
    "leaflet.fullscreen": NODE_MODULES / "leaflet.fullscreen/dist",
    "leaflet.locatecontrol": NODE_MODULES / "leaflet.locatecontrol/dist",
    OWN_PACKAGE: OWN_FILES,
}
MAX_AGE = 86400
_TEXT = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@lru_cache(maxsize=64)
def _gzipped(path: str, _mtime: float) -> bytes:
    return gzip_bytes(Path(path).read_bytes())


@bp.route("/vendor/<package>/<path:filename>")
def asset(package: str, filename: str) -> Response:
    if package not in ALLOWED:
        abort(404)
    response = send_from_directory(ALLOWED[package], filename, max_age=MAX_AGE)
    suffix = Path(filename).suffix
    if suffix in _TEXT and response.status_code == 200 and accepts_gzip():
        path = safe_join(str(ALLOWED[package]), filename)
        assert path is not None  # send_from_directory already refused anything else
        response.close()
        response.direct_passthrough = False
        response.set_data(_gzipped(path, Path(path).stat().st_mtime))
        response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        tag = response.get_etag()[0]
        if tag:
            response.set_etag(tag + "-gz")
    return response
