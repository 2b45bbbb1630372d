"""Our folium elements: the fast venue layer, the legend, the boundaries and the full-screen
button as leaflet.fullscreen 5 wants it.

The venue layer is not thousands of ``folium.Marker``: it is one element whose script
(``static/venue-layer.js``) reads the compact columns of
:func:`mapservice.core.mapdata.venue_columns` — fetched from the app (``data_url``) or
embedded in the document (``columns``, for the standalone file) — and draws them with
Leaflet.markercluster. Every text a user typed (venue, unit, street names, addresses) reaches
the page as JSON data and is put into the DOM as text nodes; nothing goes through
``folium.Popup``/``Tooltip``, whose templates are JavaScript template literals (folium 0.20
escapes backticks there, but ``${…}`` and backslashes still run).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import folium
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.plugins import Fullscreen as FoliumFullscreen
from folium.template import Template
from folium.utilities import JsCode

__all__ = [
    "ActivityLayer",
    "Fullscreen",
    "Legend",
    "MapChrome",
    "PointMarker",
    "VenueLayer",
    "boundaries",
    "js_json",
    "js_string",
]

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: The DOM helpers (``static/dom.js``) our scripts share: listed before each of them.
DOM_JS = ("mapservice_dom_js", "mapservice/dom.js")

#: The look of the boundaries (as today's pages draw them).
DISTRICT_STYLE = {"color": "#c62828", "weight": 2, "fillColor": "#ffebee", "fillOpacity": 0.3}
STREET_STYLE = {"color": "#607d8b", "weight": 1, "dashArray": "4 4", "fill": False}


def _template(name: str) -> Template:
    return cast(Template, Template((TEMPLATES / name).read_text(encoding="utf-8")))


#: A ``{`` that would open a Jinja tag (``{{``, ``{%``, ``{#``). In compact JSON a ``{`` outside
#: a string is always followed by ``"`` or ``}``, so every match is inside a string.
_JINJA_OPEN = re.compile(r"\{(?=[{%#])")


def js_json(value: Any) -> str:
    """``value`` as JSON that is safe as JavaScript inside an HTML ``<script>``: ``<``, ``>``,
    ``&`` and ``'`` escaped (as Jinja's ``tojson``), and U+2028/U+2029 too; other characters
    left as UTF-8 (``tojson`` writes each Chinese character as a 6-byte escape, which doubles
    the names of an embedded venue layer).

    A ``{`` that would open a Jinja tag is escaped too: branca compiles what a macro rendered
    as a template of its own and renders it again, so text such as ``{{7*7}}`` in a venue's
    name would otherwise be evaluated on the server (the exported map)."""
    text = (
        json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return _JINJA_OPEN.sub(r"\\u007b", text)


def js_string(value: str) -> str:
    """``value`` as a JavaScript string literal that is safe inside an HTML ``<script>``."""
    return js_json(value)


class VenueLayer(JSCSSMixin, Layer):
    """The venues of the one map (or of a venue page) as one Leaflet.markercluster layer.

    ``options`` go to ``MapService.venueLayer`` as JSON (see ``static/venue-layer.js``):
    ``dataUrl`` or ``columns``, ``crs``, ``types``, ``labels``, ``popupUrl``, ``freeUrl``,
    ``venueUrl``, ``window``, ``venue`` (a permalink's venue id), ``api`` (the name the
    layer's API is published under in ``window.MapService``). ``areas`` maps a coordinate
    system to the boundary layer drawn in it; the script shows the one that matches the base
    map and reloads the venues in its coordinate system when the base map changes.
    """

    _template = _template("venue_layer.html")

    default_js = [
        ("markerclusterjs", "leaflet.markercluster/leaflet.markercluster.js"),
        DOM_JS,
        ("mapservice_venue_layer_js", "mapservice/venue-layer.js"),
    ]
    default_css = [
        ("markerclustercss", "leaflet.markercluster/MarkerCluster.css"),
        ("markerclusterdefaultcss", "leaflet.markercluster/MarkerCluster.Default.css"),
        ("mapservice_maps_css", "mapservice/maps.css"),
    ]

    def __init__(
        self,
        options: Mapping[str, Any],
        *,
        types: Sequence[Mapping[str, str]],
        areas: Mapping[str, folium.GeoJson] | None = None,
        name: str | None = None,
        control: bool = False,
    ) -> None:
        super().__init__(name=name, overlay=True, control=control, show=True)
        self._name = "VenueLayer"
        if ("dataUrl" in options) == ("columns" in options):
            raise ValueError("a venue layer reads either dataUrl or columns")
        self.types = [dict(t) for t in types]
        self.options = {**options, "types": self.types}
        self.areas = dict(areas or {})

    @property
    def options_json(self) -> str:
        """The options as the template writes them (:func:`js_json`)."""
        return js_json(self.options)

    @property
    def preload_url(self) -> str | None:
        """The data the script fetches first (``withParam(dataUrl, "crs", crs)``), for the
        page to start fetching while the scripts load; ``None`` with embedded columns."""
        url = self.options.get("dataUrl")
        if not url:
            return None
        sep = "&" if "?" in str(url) else "?"
        return f"{url}{sep}crs={quote(str(self.options.get('crs') or 'wgs84'), safe='')}"


class Legend(JSCSSMixin):
    """A legend control: ``entries`` of ``{"label", "kind"}`` (kind ``district``, ``street``,
    ``venue`` or ``type``; a type entry also has ``color`` and ``glyph``), drawn as text."""

    _template = _template("legend.html")

    default_js = [DOM_JS, ("mapservice_venue_layer_js", "mapservice/venue-layer.js")]
    default_css = [("mapservice_maps_css", "mapservice/maps.css")]

    def __init__(
        self, entries: Sequence[Mapping[str, str]], *, title: str = "", position: str = "bottomleft"
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca is untyped
        self._name = "Legend"
        self.options = {
            "title": title,
            "position": position,
            "entries": [dict(e) for e in entries],
        }


class Fullscreen(FoliumFullscreen):
    """folium's ``plugins.Fullscreen`` with a template for the leaflet.fullscreen we ship (5.x:
    ``new L.Control.FullScreen``; folium's calls ``L.control.fullscreen``, gone since 4.0)."""

    _template = _template("fullscreen.html")


def _area_tooltips(approx: str) -> JsCode:
    # Names become text nodes; a street's is a permanent label in its middle, the district's
    # follows the pointer.
    return JsCode(
        "function (feature, layer) {\n"
        "  var p = feature.properties || {};\n"
        "  var span = document.createElement('span');\n"
        f"  span.textContent = String(p.name) + (p.approximate ? ' (' + {js_string(approx)} + ')'"
        " : '');\n"
        "  layer.bindTooltip(span, p.level === 'street'\n"
        "    ? {permanent: true, direction: 'center', className: 'street-label'}\n"
        "    : {sticky: true, className: 'district-label'});\n"
        "}"
    )


def _area_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    level = feature.get("properties", {}).get("level")
    return dict(DISTRICT_STYLE if level == "district" else STREET_STYLE)


def boundaries(
    features: Mapping[str, Any], *, name: str, approx: str, show: bool = True
) -> folium.GeoJson:
    """District and street boundaries (:func:`mapservice.core.mapdata.area_features`) as a
    ``folium.GeoJson`` with text tooltips; not in the layer control (the venue layer swaps
    it with its twin in the other coordinate system)."""
    return folium.GeoJson(
        dict(features),
        name=name,
        style_function=_area_style,
        on_each_feature=_area_tooltips(approx),
        control=False,
        show=show,
        # Clicks go through to the map (picking a point, closing popups).
        bubblingMouseEvents=True,
    )


class PointMarker(JSCSSMixin):
    """One point: a venue on its page, or the point being placed in the registration picker
    (``pick``: the ids of the form's ``lon``, ``lat`` and ``crs`` inputs, filled on a click).
    ``key`` publishes the Leaflet map as ``MapService.maps[key]`` (the browser tests ask it
    where things are)."""

    _template = _template("point_marker.html")

    default_js = [DOM_JS, ("mapservice_venue_layer_js", "mapservice/venue-layer.js")]
    default_css = [("mapservice_maps_css", "mapservice/maps.css")]

    def __init__(
        self,
        point: tuple[float, float] | None,
        *,
        key: str,
        zoom: int | None = None,
        pick: Mapping[str, str] | None = None,
        crs: str = "wgs84",
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca is untyped
        self._name = "PointMarker"
        self.options: dict[str, Any] = {"point": list(point) if point else None, "key": key}
        if zoom is not None:
            self.options["zoom"] = zoom
        if pick is not None:
            self.options["pick"] = dict(pick)
            self.options["crs"] = crs


class MapChrome(JSCSSMixin):
    """A metric-only scale (folium's ``control_scale`` shows miles too) and a plain "Leaflet"
    attribution prefix, as the pages had them."""

    _template = _template("chrome.html")

    default_js = [DOM_JS, ("mapservice_venue_layer_js", "mapservice/venue-layer.js")]

    def __init__(self, *, scale: bool = True) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca is untyped
        self._name = "MapChrome"
        self.options = {"scale": scale, "prefix": "Leaflet"}


class ActivityLayer(JSCSSMixin, Layer):
    """The upcoming activities and the pairings of the one map (``static/activity-layer.js``):
    read from ``options["dataUrl"]`` (the app's ``/map/activities.json``, GeoJSON in the base
    map's coordinate system), drawn as coloured points (a site's drawn area shaded), the
    pairings as lines from a unit to its partner and the paired streets shaded; a control
    filters by month, kind and "open for sign-up" and switches the pairings on and off.
    ``options``: ``dataUrl``, ``crs``, ``kinds`` (key, label, colour), ``months``,
    ``filter`` (``month``, ``kind``, ``open``), ``labels``. Published as
    ``MapService.activities``."""

    _template = _template("activity_layer.html")

    default_js = [DOM_JS, ("mapservice_activity_layer_js", "mapservice/activity-layer.js")]
    default_css = [("mapservice_maps_css", "mapservice/maps.css")]

    def __init__(self, options: Mapping[str, Any], *, name: str | None = None) -> None:
        super().__init__(name=name, overlay=True, control=False, show=True)
        self._name = "ActivityLayer"
        if not options.get("dataUrl"):
            raise ValueError("an activity layer reads its dataUrl")
        self.options = dict(options)

    @property
    def options_json(self) -> str:
        return js_json(self.options)
