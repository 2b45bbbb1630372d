"""The maps the app draws, built as folium maps from plain values: the one map, a venue's small
map and the registration picker.

Pure: no Flask, no request, no database (but for :func:`one_map` given ``committee=``, the
notebook's way in, which reads the database through :mod:`mapservice.maps.loading`). The
caller (a view, the CLI, a notebook) loads the boundaries and says which base maps, which
texts and where the venues come from; what comes back is a ``folium.Map`` to render
(``m.get_root().render()``), save (``m.save(path)``) or extend. Its scripts and styles
still name folium's CDNs until :func:`mapservice.maps.assets.localize` points them at the
app (every builder here takes ``assets=`` to do it at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import folium
from folium.map import FitBounds
from folium.plugins import LocateControl

from mapservice.core import mapdata
from mapservice.core.i18n import _
from mapservice.core.vocab import VenueType
from mapservice.maps.assets import Asset, file_url, localize
from mapservice.maps.plugins import (
    ActivityLayer,
    Fullscreen,
    Legend,
    MapChrome,
    PointMarker,
    VenueLayer,
    boundaries,
)

__all__ = [
    "AreaRow",
    "activity_labels",
    "map_labels",
    "one_map",
    "picker_map",
    "venue_map",
    "venue_types",
]

#: A boundary as ``operations.mapview.load_areas`` returns it: (id, name, level, approximate,
#: GeoJSON geometry in WGS-84).
AreaRow = tuple[int, str, str, bool, dict[str, Any]]
AssetUrls = Callable[[Asset], str] | str | None

#: Where a map with no boundaries opens (Runzhou, the seed district).
DEFAULT_CENTER = (32.2, 119.42)
DEFAULT_ZOOM = 12
#: Leaflet.markercluster needs the map's maxZoom even with no tile layer.
MAX_ZOOM = 19


def venue_types(lang: str = "zh") -> list[dict[str, str]]:
    """The venue types as the legend and the markers show them: key, label, colour, glyph."""
    return [
        {"key": t.value, "label": t.label(lang), "color": color, "glyph": glyph}
        for t in VenueType
        for color, glyph in [mapdata.TYPE_STYLE[t.value]]
    ]


def map_labels() -> dict[str, str]:
    """The texts the map scripts show, in the current language (``core.i18n.use_locale``)."""
    return {
        "approx": _("approximate"),
        "units": _("Capacity units"),
        "headcount": _("Maximum headcount"),
        "today": _("Open today"),
        "closedToday": _("Closed today"),
        "openOn": _("Open on %(day)s"),
        "closedOn": _("Closed on %(day)s"),
        "freeToday": _("Free today"),
        "noFreeToday": _("No free slot left today"),
        "windowFree": _("%(when)s: %(free)s of %(total)s units free"),
        "windowClosed": _("%(when)s: closed"),
        "windowFull": _("%(when)s: fully booked"),
        "facilities": _("Facilities"),
        "phone": _("Phone"),
        "address": _("Address"),
        "details": _("Details"),
        "book": _("Book"),
        "km": _("km"),
        "locate": _("Show my location"),
        "locateFailed": _("Your location is not available."),
        "fullscreen": _("Full screen"),
        "exitFullscreen": _("Exit full screen"),
        "layers": _("Venue types"),
        "unitLayers": _("Member units"),
    }


def activity_labels() -> dict[str, str]:
    """The texts of the activity layer's control and popups, in the current language."""
    return {
        "activities": _("Activities"),
        "month": _("Month"),
        "anyMonth": _("Any month"),
        "kind": _("Kind"),
        "anyKind": _("Any kind"),
        "openOnly": _("Open for sign-up"),
        "pairings": _("Pairings"),
        "pairedArea": _("%(name)s: paired with %(units)s"),
        "lead": _("Led by %(unit)s"),
        "places": _("%(confirmed)s of %(capacity)s places taken"),
        "signUp": _("Sign up"),
    }


def _bounds(features: Iterable[Mapping[str, Any]]) -> list[list[float]] | None:
    """[[south, west], [north, east]] of the features' positions, or None."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords: Any) -> None:
        if coords and isinstance(coords[0], int | float):
            xs.append(float(coords[0]))
            ys.append(float(coords[1]))
        else:
            for c in coords:
                walk(c)

    def geometry(g: Mapping[str, Any]) -> None:
        if g.get("type") == "GeometryCollection":
            for sub in g.get("geometries", []):
                geometry(sub)
        elif "coordinates" in g:
            walk(g["coordinates"])

    for f in features:
        geometry(f.get("geometry") or {})
    if not xs:
        return None
    return [[min(ys), min(xs)], [max(ys), max(xs)]]


def _base_map(
    areas: Sequence[AreaRow],
    tiles: Sequence[mapdata.TileLayer],
    labels: Mapping[str, str],
    *,
    boundary_name: str,
) -> tuple[folium.Map, dict[str, folium.GeoJson]]:
    """A map with the base maps, the boundaries in each coordinate system the base maps need
    (only the first base map's shown) and the standard controls, fitted to the district."""
    tiles = list(tiles) or mapdata.tile_layers("none")
    first_crs = tiles[0].crs
    m = folium.Map(
        location=list(DEFAULT_CENTER),
        zoom_start=DEFAULT_ZOOM,
        tiles=None,
        zoom_snap=0.25,
    )
    # Map(max_zoom=…) only reaches a tile layer built from ``tiles=``; the map's own option
    # goes through its options.
    m.options["max_zoom"] = MAX_ZOOM
    MapChrome().add_to(m)
    for i, t in enumerate(tiles):
        if t.url:
            folium.TileLayer(
                tiles=t.url,
                # folium refuses a custom URL with no attribution.
                attr=t.attribution or t.name,
                name=t.name,
                max_zoom=t.max_zoom,
                min_native_zoom=t.native_zooms[0] if t.native_zooms else None,
                max_native_zoom=t.native_zooms[1] if t.native_zooms else None,
                subdomains=t.subdomains or "abc",
                overlay=False,
                control=True,
                show=i == 0,
                mapservice_crs=t.crs,
            ).add_to(m)
        else:
            # "No base map" is an empty base layer, so the layer control can switch to it.
            folium.FeatureGroup(
                name=t.name, overlay=False, control=True, show=i == 0, mapservice_crs=t.crs
            ).add_to(m)
    by_crs: dict[str, folium.GeoJson] = {}
    fitted: list[list[float]] | None = None
    for crs in dict.fromkeys(t.crs for t in tiles):
        features = mapdata.area_features(areas, crs)
        layer = boundaries(
            features, name=boundary_name, approx=labels.get("approx", ""), show=crs == first_crs
        )
        layer.add_to(m)
        by_crs[crs] = layer
        if crs == first_crs:
            district = [f for f in features["features"] if f["properties"]["level"] == "district"]
            fitted = _bounds(district or features["features"])
    if fitted is not None:
        # Not m.fit_bounds: a map made with a location is already loaded, so folium's
        # fitBounds animates, and markercluster's zoomToShowLayer called during that first
        # animation never calls back (a permalink's popup would not open).
        fit = FitBounds(fitted, padding=(8, 8))
        fit.options["animate"] = False
        fit.add_to(m)
    return m, by_crs


def _controls(m: folium.Map, tiles: Sequence[mapdata.TileLayer], labels: Mapping[str, str]) -> None:
    Fullscreen(  # type: ignore[no-untyped-call]  # folium's plugins are untyped
        position="topleft",
        title=labels.get("fullscreen", "Full screen"),
        title_cancel=labels.get("exitFullscreen", "Exit full screen"),
    ).add_to(m)
    LocateControl(  # type: ignore[no-untyped-call]
        position="topleft",
        strings={"title": labels.get("locate", "Show my location")},
        showPopup=False,
        locateOptions={"maxZoom": 15},
    ).add_to(m)
    if len(tiles) > 1:
        # Added last: folium's LayerControl lists the layers added before it. The names are
        # ours (base maps), never user text: Leaflet sets them as HTML.
        folium.LayerControl(position="topright", collapsed=True).add_to(m)


def _finish(m: folium.Map, assets: AssetUrls) -> folium.Map:
    if assets is not None:
        localize(m, assets)
    return m


def one_map(
    *,
    areas: Sequence[AreaRow] = (),
    tiles: Sequence[mapdata.TileLayer] | str = (),
    lang: str = "zh",
    labels: Mapping[str, str] | None = None,
    data_url: str | None = None,
    columns: Mapping[str, Any] | None = None,
    venue_url: str | None = None,
    popup_url: str | None = None,
    free_url: str | None = None,
    window: Mapping[str, str] | None = None,
    venue: int | None = None,
    assets: AssetUrls = None,
    committee: str | None = None,
    database_url: str | None = None,
    filters: Mapping[str, str | Sequence[str]] | None = None,
    activities: Mapping[str, Any] | None = None,
) -> folium.Map:
    """The one map of a committee: base maps, boundaries, the venue layer (from ``data_url``,
    the app's ``/map/data.json`` with the page's filter, or from embedded ``columns``), the
    per-type and per-unit toggles, full screen, locate and the layer control. ``venue_url``,
    ``popup_url``, ``free_url`` and ``window`` give the popups their links and live details
    (as ``web/mapview.py`` passes them to the page today); ``venue`` opens a permalink's
    popup. The layer's API is published as ``window.MapService.oneMap``. ``tiles`` may be
    the ``MAPSERVICE_TILES`` setting's text (``"osm"``, ``"none"``, …).

    From a notebook or a script, give ``committee`` (a slug) instead of ``areas`` and the
    venues: the committee's public map under ``filters`` (``/map``'s parameters) is read from
    ``database_url`` (default: the app's), every venue embedded with its popup text, and the
    map's scripts pointed at the installed files unless ``assets`` says otherwise
    (``docs/maps.md``).

    ``activities`` adds the activity and pairing layer (:class:`ActivityLayer`): its
    ``dataUrl``, ``kinds``, ``months`` and first ``filter`` (a member's map; activities are
    not public)."""
    if committee is not None:
        from mapservice.maps.loading import load_public_map

        loaded = load_public_map(committee, database_url, filters, lang)
        areas, columns = loaded.areas, loaded.columns
        assets = file_url if assets is None else assets
    labels = dict(labels or map_labels())
    if isinstance(tiles, str):
        tiles = mapdata.tile_layers(tiles, lang=lang)
    tiles = list(tiles) or mapdata.tile_layers("none")
    m, by_crs = _base_map(areas, tiles, labels, boundary_name=_("Boundaries"))
    options: dict[str, Any] = {"crs": tiles[0].crs, "labels": labels, "api": "oneMap"}
    if data_url is not None:
        options["dataUrl"] = data_url
    if columns is not None:
        options["columns"] = dict(columns)
    for key, value in (
        ("venueUrl", venue_url),
        ("popupUrl", popup_url),
        ("freeUrl", free_url),
        ("window", dict(window) if window else None),
        ("venue", venue),
    ):
        if value is not None:
            options[key] = value
    VenueLayer(options, types=venue_types(lang), areas=by_crs).add_to(m)
    if activities is not None:
        ActivityLayer({"crs": tiles[0].crs, "labels": activity_labels(), **activities}).add_to(m)
    _controls(m, tiles, labels)
    return _finish(m, assets)


def _area_legend(labels: Mapping[str, str]) -> list[dict[str, str]]:
    return [
        {"kind": "district", "label": _("District")},
        {"kind": "street", "label": _("Street")},
        {"kind": "venue", "label": labels.get("venue", _("Venue"))},
    ]


def venue_map(
    *,
    areas: Sequence[AreaRow],
    point: tuple[float, float],
    tiles: Sequence[mapdata.TileLayer] = (),
    labels: Mapping[str, str] | None = None,
    assets: AssetUrls = None,
) -> folium.Map:
    """A venue's small map: the boundaries, the venue's point (``(lon, lat)`` in WGS-84,
    converted when the first base map is GCJ-02) at street zoom, a legend. Published as
    ``MapService.maps["venue-map"]``."""
    labels = dict(labels or map_labels())
    tiles = list(tiles) or mapdata.tile_layers("none")
    m, _by_crs = _base_map(areas, tiles, labels, boundary_name=_("Boundaries"))
    shown = _display_point(point, tiles[0].crs)
    PointMarker(shown, key="venue-map", zoom=15).add_to(m)
    Legend(_area_legend(labels)).add_to(m)
    _controls(m, tiles, labels)
    return _finish(m, assets)


def picker_map(
    *,
    areas: Sequence[AreaRow],
    tiles: Sequence[mapdata.TileLayer] = (),
    point: tuple[float, float] | None = None,
    nearby: Mapping[str, Any] | str | None = None,
    lang: str = "zh",
    labels: Mapping[str, str] | None = None,
    fields: Mapping[str, str] | None = None,
    assets: AssetUrls = None,
) -> folium.Map:
    """The registration picker: the configured base maps, the boundaries, the point being
    placed (``point``, WGS-84, if the form has one) and, for orientation, the venues
    ``nearby``: columns as :func:`mapservice.core.mapdata.venue_columns` gives them, or the
    URL that answers them (``/map/data.json``); no popups' live details. A click fills the
    form inputs named in ``fields`` (``lon``, ``lat``, ``crs``: their element ids) in the
    base map's coordinate system. Published as ``MapService.maps["pick-map"]``."""
    labels = dict(labels or map_labels())
    tiles = list(tiles) or mapdata.tile_layers("none")
    m, by_crs = _base_map(areas, tiles, labels, boundary_name=_("Boundaries"))
    if nearby is not None:
        # For orientation only: no toggles, and the view stays where the picker put it.
        options: dict[str, Any] = {
            "crs": tiles[0].crs,
            "labels": labels,
            "toggles": False,
            "fit": False,
        }
        if isinstance(nearby, str):
            options["dataUrl"] = nearby
        else:
            options["columns"] = dict(nearby)
        VenueLayer(options, types=venue_types(lang), areas=by_crs).add_to(m)
    crs = tiles[0].crs
    shown = _display_point(point, crs) if point is not None else None
    PointMarker(
        shown,
        key="pick-map",
        pick=dict(fields or {"lon": "lon", "lat": "lat", "crs": "crs"}),
        crs=crs,
    ).add_to(m)
    Legend(_area_legend(labels)).add_to(m)
    _controls(m, tiles, labels)
    return _finish(m, assets)


def _display_point(point: tuple[float, float], crs: str) -> tuple[float, float]:
    from mapservice.core.coords import from_wgs84

    if crs == "wgs84":
        return point
    x, y = from_wgs84(point[0], point[1], crs)
    return (x, y)
