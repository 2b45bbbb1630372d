"""A CJK font for matplotlib, installed from a system package (Debian: ``fonts-noto-cjk``),
never shipped in the repository."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import matplotlib
from matplotlib import font_manager

#: Families tried in order (the Noto CJK collection names its faces by region).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Serif CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
)


class FontMissing(RuntimeError):
    """No CJK font is installed: Chinese text would print as empty boxes."""


def _known() -> set[str]:
    return {f.name for f in font_manager.fontManager.ttflist}


@lru_cache(maxsize=1)
def cjk_family() -> str:
    """The family name of an installed CJK font (registering system fonts matplotlib's
    cache has not seen yet, e.g. a package installed after the cache was built).

    Raises :class:`FontMissing` with the command that fixes it."""
    known = _known()
    for family in CJK_FAMILIES:
        if family in known:
            return family
    for path in font_manager.findSystemFonts():
        lowered = path.lower()
        if "cjk" in lowered or "wqy" in lowered or "sourcehan" in lowered:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # pragma: no cover - unreadable file
                continue
    known = _known()
    for family in CJK_FAMILIES:
        if family in known:
            return family
    raise FontMissing(
        "no CJK font found (looked for " + ", ".join(CJK_FAMILIES) + "); install one, "
        "e.g. 'apt-get install fonts-noto-cjk' (Debian/Ubuntu), and check with "
        "'fc-list :lang=zh'"
    )


#: matplotlib is not thread-safe (shared font caches, global rcParams): the web server
#: renders one figure at a time.
RENDER_LOCK = threading.RLock()


def use_cjk() -> None:
    """Make matplotlib draw Chinese: set the process-wide rc settings once (not per figure in
    a context manager — those restore globals under other threads' feet)."""
    settings = rc()
    with RENDER_LOCK:
        for key, value in settings.items():
            matplotlib.rcParams[key] = value


def rc() -> Any:
    """matplotlib rc settings for figures with Chinese text."""
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [cjk_family(), "DejaVu Sans"],
        "axes.unicode_minus": False,
        "pdf.fonttype": 42,
        "svg.fonttype": "path",
    }


class Rendered:
    """The documents rendered last (printed maps, plan lists), by a digest of everything drawn
    on them: a document asked for again — the same map in the same language on the same day —
    is sent again rather than drawn again (embedding the CJK font's glyphs costs seconds).
    Exact by construction: anything drawn that differs gives another digest. Bounded by the
    bytes it holds; least recently used first out. Use under :data:`RENDER_LOCK`."""

    def __init__(self, max_bytes: int = 24 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._docs: OrderedDict[str, bytes] = OrderedDict()

    @staticmethod
    def key(*parts: object) -> str:
        """The digest of ``parts``: text, numbers, dates, dataclasses and shapely geometries
        (by their WKB), nested in lists or tuples."""
        digest = hashlib.sha256()

        def feed(part: object) -> None:
            if isinstance(part, list | tuple):
                digest.update(b"[%d" % len(part))
                for item in part:
                    feed(item)
                digest.update(b"]")
            elif hasattr(part, "wkb"):
                digest.update(b"g" + part.wkb)
            else:
                text = repr(part).encode()
                digest.update(b"r%d:" % len(text) + text)

        for part in parts:
            feed(part)
        return digest.hexdigest()

    def get(self, key: str) -> bytes | None:
        data = self._docs.get(key)
        if data is not None:
            self._docs.move_to_end(key)
        return data

    def put(self, key: str, data: bytes) -> bytes:
        if len(data) <= self.max_bytes:
            self._docs[key] = data
            while sum(len(d) for d in self._docs.values()) > self.max_bytes:
                self._docs.popitem(last=False)
        return data


RENDERED = Rendered()
