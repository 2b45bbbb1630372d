"""A folium map taken apart for one of the app's pages.

``Figure.render()`` gives a whole document: its own ``<html>``/``<body>``, a viewport that
forbids zooming, ``html, body {height: 100%; margin: 0}``, an inline ``<script>`` of globals,
and the map's code in one more inline ``<script>``. The app's pages have their own layout and a
Content-Security-Policy of ``script-src 'self'``, so a page takes the parts instead: the
links to load, the element styles, the map's ``<div>``, and the map's code as text to serve
as a script of the app (or to allow by its hash). Element names are made stable (numbered in
tree order), so the same map gives the same code, which a browser can cache and a CSP can
name by hash.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import folium
from branca.element import CssLink, Figure, JavascriptLink

from mapservice.maps.assets import elements

__all__ = ["MapParts", "page_parts", "stable_names"]


@dataclass(frozen=True)
class MapParts:
    """What a page template needs: ``scripts`` and ``styles`` (URLs, in order), ``head``
    (the elements' own ``<style>`` blocks), ``html`` (the map's ``<div>``), ``script`` (the
    map's code, no ``<script>`` tag) and its CSP hash source (``'sha256-…'``)."""

    scripts: tuple[str, ...]
    styles: tuple[str, ...]
    head: str
    html: str
    script: str

    @property
    def script_hash(self) -> str:
        digest = hashlib.sha256(self.script.encode()).digest()
        return f"'sha256-{base64.b64encode(digest).decode()}'"


def stable_names(m: folium.Map, prefix: str = "") -> None:
    """Number every element of the map's tree in order (``map_0``, ``tile_layer_1`` …;
    ``prefix`` keeps two maps of one page apart)."""
    for i, element in enumerate(elements(m)):
        element._id = f"{prefix}{i}"


def page_parts(m: folium.Map, prefix: str = "") -> MapParts:
    """The parts of ``m`` for a page (see the module's docstring). Localize the map first
    (:func:`mapservice.maps.assets.localize`)."""
    stable_names(m, prefix)
    figure = m.get_root()
    assert isinstance(figure, Figure)
    for child in figure._children.values():
        child.render()
    scripts: list[str] = []
    styles: list[str] = []
    head: list[str] = []
    for name, child in figure.header._children.items():
        if isinstance(child, JavascriptLink):
            scripts.append(child.url)
        elif isinstance(child, CssLink):
            styles.append(child.url)
        elif name == m.get_name() or name == "meta_http":
            # The Map's own header: a whole-document layout and an inline script.
            continue
        else:
            head.append(child.render())
    html = figure.html.render()
    script = figure.script.render()
    return MapParts(tuple(scripts), tuple(styles), "\n".join(head), html, script)
