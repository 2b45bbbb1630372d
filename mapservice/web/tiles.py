"""A base map from an MBTiles file (``MAPSERVICE_TILES=…,mbtiles:PATH``): its raster tiles at
``/tiles/Z/X/Y``, for an intranet deployment that was given a file instead of a tile server.
The file is opened and checked when the app starts; a missing or unusable file stops the start
with one line saying why (``mapservice.core.mbtiles``)."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, current_app, request
from werkzeug.wrappers import Response

from mapservice.core.mapdata import mbtiles_path
from mapservice.core.mbtiles import MBTiles, open_mbtiles

bp = Blueprint("tiles", __name__)
MAX_AGE = 86400


def init_app(app: Flask) -> None:
    path = mbtiles_path(app.config.get("MAPSERVICE_TILES", "none"))
    if path is not None:
        app.extensions["mbtiles"] = open_mbtiles(path)
    app.register_blueprint(bp)


@bp.route("/tiles/<int:z>/<int:x>/<int:y>")
def tile(z: int, x: int, y: int) -> Response:
    source: MBTiles | None = current_app.extensions.get("mbtiles")
    if source is None:
        abort(404)
    data = source.tile(z, x, y)
    if data is None:
        abort(404)
    response = Response(data, mimetype=source.media_type)
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    response.add_etag()
    return response.make_conditional(request)
