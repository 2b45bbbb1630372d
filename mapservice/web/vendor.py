"""Front-end libraries served by the app itself from the npm packages `make` installs
(``node_modules/``): no page loads anything from a CDN, so the service works on an intranet."""

from __future__ import annotations

from flask import Blueprint, abort, send_from_directory
from werkzeug.wrappers import Response

from mapservice.config import ROOT

bp = Blueprint("vendor", __name__)
NODE_MODULES = ROOT / "node_modules"
# Only the distribution folders of the packages we ship.
ALLOWED = {
    "leaflet": "leaflet/dist",
    "bootstrap": "bootstrap/dist",
}


@bp.route("/vendor/<package>/<path:filename>")
def asset(package: str, filename: str) -> Response:
    if package not in ALLOWED:
        abort(404)
    response = send_from_directory(NODE_MODULES / ALLOWED[package], filename, max_age=86400)
    return response
