"""Every script and style sheet a folium map loads, pointed at the app instead of a CDN.

folium declares its libraries as ``(name, url)`` pairs in the ``default_js`` / ``default_css``
class attributes of :class:`folium.Map` and of each plugin (``JSCSSMixin`` subclasses), all on
public CDNs (jsDelivr, cdnjs, code.jquery.com, netdna). :func:`localize` walks a built map's
whole element tree and gives every such element its own lists: each name known here is
pointed at the file of the npm package ``make assets`` installs (served by the app under
``/vendor/PACKAGE/FILE``; ours under ``/vendor/mapservice/FILE``), each name the maps do not
need (jQuery, Bootstrap, glyphicons, Font Awesome, awesome-markers) is dropped, and an unknown
name is an error rather than a silent request to the internet.

``add_js_link``/``add_css_link`` (folium's documented way) are not used: they edit the list in
place, and for the Map that list is the class attribute, shared by every map of the process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from branca.element import Element
from folium.elements import JSCSSMixin

from mapservice.config import ROOT

__all__ = [
    "ASSETS",
    "DROPPED",
    "OWN_FILES",
    "Asset",
    "UnknownAsset",
    "asset_path",
    "elements",
    "localize",
    "vendor_url",
]

#: The folder of the npm packages (``make assets``), beside the ``mapservice`` package.
NODE_MODULES = ROOT / "node_modules"
#: Our own map scripts and styles (the venue layer), served beside the npm packages.
OWN_FILES = Path(__file__).resolve().parent / "static"
#: The package name our own files are served under.
OWN_PACKAGE = "mapservice"


@dataclass(frozen=True)
class Asset:
    """A file of an npm package (its ``dist`` folder, as ``web/vendor.py`` serves it)."""

    package: str
    filename: str


#: folium's resource names (folium 0.20: ``folium.Map`` and the plugins we use) and ours.
ASSETS: dict[str, Asset] = {
    # folium.Map
    "leaflet": Asset("leaflet", "leaflet.js"),
    "leaflet_css": Asset("leaflet", "leaflet.css"),
    # folium.plugins.MarkerCluster
    "markerclusterjs": Asset("leaflet.markercluster", "leaflet.markercluster.js"),
    "markerclustercss": Asset("leaflet.markercluster", "MarkerCluster.css"),
    "markerclusterdefaultcss": Asset("leaflet.markercluster", "MarkerCluster.Default.css"),
    # folium.plugins.Fullscreen (folium names 3.0.0's file; the UMD build of 5.x is what we ship)
    "Control.Fullscreen.js": Asset("leaflet.fullscreen", "Control.FullScreen.umd.js"),
    "Control.FullScreen.css": Asset("leaflet.fullscreen", "Control.FullScreen.css"),
    # folium.plugins.LocateControl
    "Control_locate_min_js": Asset("leaflet.locatecontrol", "L.Control.Locate.min.js"),
    "Control_locate_min_css": Asset("leaflet.locatecontrol", "L.Control.Locate.min.css"),
    # ours (mapservice.maps.plugins)
    "mapservice_dom_js": Asset(OWN_PACKAGE, "dom.js"),
    "mapservice_venue_layer_js": Asset(OWN_PACKAGE, "venue-layer.js"),
    "mapservice_activity_layer_js": Asset(OWN_PACKAGE, "activity-layer.js"),
    "mapservice_maps_css": Asset(OWN_PACKAGE, "maps.css"),
}

#: What folium.Map loads for features the maps do not use: jQuery (only for folium.Popup's
#: HTML and objects_to_stay_in_front), Bootstrap, glyphicons, Font Awesome and
#: awesome-markers (folium.Icon). :func:`localize` refuses a tree that uses them.
DROPPED: frozenset[str] = frozenset(
    {
        "jquery",
        "bootstrap",
        "awesome_markers",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    }
)


class UnknownAsset(ValueError):
    """A map element asks for a script or style sheet this module has no local file for."""


def elements(root: Element) -> Iterator[Element]:
    """``root`` and every element below it, depth first."""
    yield root
    for child in list(root._children.values()):
        yield from elements(child)


def asset_path(asset: Asset) -> Path:
    """Where the file lies on disk (for the app's vendor route and for inlining)."""
    if asset.package == OWN_PACKAGE:
        return OWN_FILES / asset.filename
    return NODE_MODULES / asset.package / "dist" / asset.filename


def file_url(asset: Asset) -> str:
    """The installed file's ``file://`` URL: a saved map opens from this machine's disk with
    no server and no network (to send it elsewhere, use ``export.standalone_html``)."""
    return asset_path(asset).as_uri()


def vendor_url(base: str) -> Callable[[Asset], str]:
    """A URL function for :func:`localize`: ``BASE/PACKAGE/FILE`` (``base`` such as
    ``/vendor``, or an absolute URL of the app for a page served elsewhere)."""
    root = base.rstrip("/")
    return lambda asset: f"{root}/{asset.package}/{asset.filename}"


def _refuse_dropped_users(root: Element) -> None:
    # Imported here: folium.map imports much of folium, and the check only runs on a build.
    from folium.map import Icon, Popup

    for element in elements(root):
        if isinstance(element, Popup | Icon):
            raise UnknownAsset(
                f"{type(element).__name__} needs jQuery or awesome-markers, which the maps do "
                "not load (and folium.Popup runs ${…} in its text): use the venue layer's popups"
            )
        if getattr(element, "objects_to_stay_in_front", None):
            raise UnknownAsset("objects_to_stay_in_front needs jQuery, which the maps do not load")


def localize(root: Element, url: Callable[[Asset], str] | str) -> Element:
    """Point every ``default_js``/``default_css`` in ``root``'s tree at the app (``url`` maps
    an :class:`Asset` to its URL, or is a base path for :func:`vendor_url`) and drop
    :data:`DROPPED`. Raises :class:`UnknownAsset` for a resource with no local file, or for an
    element that needs a dropped library. Returns ``root``, changed in place (each element
    gets lists of its own; the classes' lists stay as folium has them)."""
    to_url = vendor_url(url) if isinstance(url, str) else url
    _refuse_dropped_users(root)
    for element in elements(root):
        if not isinstance(element, JSCSSMixin):
            continue
        for attribute in ("default_js", "default_css"):
            pairs: list[tuple[str, str]] = []
            for name, _cdn in getattr(element, attribute):
                if name in DROPPED:
                    continue
                asset = ASSETS.get(name)
                if asset is None:
                    raise UnknownAsset(
                        f"{type(element).__name__} loads {name!r} ({_cdn}); no local file is "
                        "known for it (add it to mapservice.maps.assets.ASSETS)"
                    )
                pairs.append((name, to_url(asset)))
            setattr(element, attribute, pairs)
    return root
