"""A folium map as one self-contained HTML file (the offline 一卷地图 people send in a chat):
every script and style sheet the map loads inlined from the installed files, the images those
style sheets name inlined as data URIs, so the file opens from disk with no server and no
network.

The map must have been built with its venues embedded (``columns=``) and no tile URL the
reader could not reach; :func:`standalone_html` localizes the assets itself.
"""

from __future__ import annotations

import base64
import html as html_lib
import mimetypes
import re
from pathlib import Path

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink

from mapservice.maps.assets import ASSETS, Asset, asset_path, localize

__all__ = ["standalone_html"]

_CSS_URL = re.compile(r"url\((['\"]?)([^'\")]+)\1\)")


def _data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline_css(path: Path) -> str:
    """The style sheet with each relative ``url(…)`` replaced by a data URI."""

    def replace(match: re.Match[str]) -> str:
        target = match.group(2)
        if target.startswith(("data:", "#", "http:", "https:", "//")):
            return match.group(0)
        file = (path.parent / target).resolve()
        if not file.is_file():
            raise FileNotFoundError(f"{path.name} names {target}, which is not installed")
        return f'url("{_data_uri(file)}")'

    return _CSS_URL.sub(replace, path.read_text(encoding="utf-8"))


def _script_safe(code: str) -> str:
    # Inside <script>, only "</script" (any case) and "<!--" change how HTML reads it.
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.I).replace("<!--", "<\\!--")


class _Inline(Element):
    """A ``<script>`` or ``<style>`` with the given content, in place of a link."""

    def __init__(self, tag: str, content: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca is untyped
        self._name = "Inline"
        self.tag = tag
        self.content = content

    def render(self, **kwargs: object) -> str:
        return f"<{self.tag}>{self.content}</{self.tag}>"


def standalone_html(m: folium.Map, title: str = "") -> str:
    """The map as one HTML document with everything inlined (see the module's docstring).
    ``title`` becomes the document's title."""
    by_url: dict[str, Asset] = {}

    def url(asset: Asset) -> str:
        key = f"mapservice-asset:{asset.package}/{asset.filename}"
        by_url[key] = asset
        return key

    localize(m, url)
    figure = m.get_root()
    assert isinstance(figure, Figure)
    if title:
        # branca's Figure writes its title as is (its templates do not autoescape).
        figure.title = html_lib.escape(title)
    # Render once so every element has put its links into the header, then swap them.
    figure.render()
    header = figure.header._children
    for name, child in list(header.items()):
        if isinstance(child, JavascriptLink | CssLink) and child.url in by_url:
            path = asset_path(by_url[child.url])
            if isinstance(child, JavascriptLink):
                header[name] = _Inline("script", _script_safe(path.read_text(encoding="utf-8")))
            else:
                header[name] = _Inline("style", _inline_css(path).replace("</", "<\\/"))
    # Later renders add the links again under the same names: render the template alone.
    html: str = figure._template.render(this=figure, kwargs={})
    leftover = [n for n, c in header.items() if isinstance(c, JavascriptLink | CssLink)]
    if leftover:
        raise ValueError(f"not inlined: {leftover}")
    assert set(by_url.values()) <= set(ASSETS.values())
    return html
