"""The folium-built maps (``mapservice.maps``) on the app's pages: their scripts and styles
pointed at ``/vendor``, taken apart for the page's layout (``mapservice.maps.page``), and their
code allowed by this response's Content-Security-Policy by its hash."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

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
    mbtiles = current_app.extensions.get("mbtiles")
    return mapdata.tile_layers(
        current_app.config.get("MAPSERVICE_TILES", "none"),
        current_app.config.get("MAPSERVICE_TIANDITU_KEY", ""),
        lang(),
        mbtiles_zooms=(mbtiles.min_zoom, mbtiles.max_zoom) if mbtiles is not None else None,
    )


def map_parts(m: folium.Map, prefix: str = "") -> MapParts:
    """``m`` ready for a template (``templates/_map_parts.html``); its code may run as this
    response's one inline script."""
    localize(m, asset_url)
    parts = page_parts(m, prefix)
    allow_inline_script(parts.script)
    return parts


# Built parts per app: key -> (expiry, parts). A map is built from the committee's boundaries,
# the base maps, the language and the filter (the key names them); its venues come from the
# data endpoint, so a venue change does not stale it. The boundaries change only from the
# console (``geodata load``): a minute bounds it.
MAP_CACHE_SECONDS = 60
MAP_CACHE_ENTRIES = 64


def cached_map_parts(
    key: tuple[Hashable, ...], build: Callable[[], folium.Map], prefix: str = ""
) -> MapParts:
    """:func:`map_parts` of ``build()``, remembered for a minute under ``key`` (which must name
    everything the map is built from but the app's configuration)."""
    cache: dict[Any, tuple[float, MapParts]] = current_app.extensions.setdefault(
        "map_parts_cache", {}
    )
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        parts = hit[1]
        allow_inline_script(parts.script)
        return parts
    parts = map_parts(build(), prefix)
    if len(cache) >= MAP_CACHE_ENTRIES:
        cache.pop(next(iter(cache)))
    cache[key] = (now + MAP_CACHE_SECONDS, parts)
    return parts
