"""The folium-built maps (``mapservice.maps``) on the app's pages: their scripts and styles
pointed at ``/vendor``, taken apart for the page's layout (``mapservice.maps.page``), and their
code allowed by this response's Content-Security-Policy by its hash."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, url_for

from mapservice.core import mapdata
from mapservice.core.i18n import lang
from mapservice.maps.assets import Asset, localize
from mapservice.maps.page import MapParts, page_parts
from mapservice.web.security import allow_inline_script

if TYPE_CHECKING:
    import folium


def asset_url(asset: Asset) -> str:
    return url_for("vendor.asset", package=asset.package, filename=asset.filename)


def configured_tiles() -> list[mapdata.TileLayer]:
    """The base maps of ``MAPSERVICE_TILES`` in the request's language."""
    return mapdata.tile_layers(
        current_app.config.get("MAPSERVICE_TILES", "none"),
        current_app.config.get("MAPSERVICE_TIANDITU_KEY", ""),
        lang(),
    )


def map_parts(m: folium.Map, prefix: str = "") -> MapParts:
    """``m`` ready for a template (``templates/_map_parts.html``); its code may run as this
    response's one inline script."""
    localize(m, asset_url)
    parts = page_parts(m, prefix)
    allow_inline_script(parts.script)
    return parts
