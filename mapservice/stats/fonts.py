"""A CJK font for matplotlib, installed from a system package (Debian: ``fonts-noto-cjk``),
never shipped in the repository."""

from __future__ import annotations

import contextvars
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

import matplotlib
from matplotlib import font_manager

R = TypeVar("R")

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

_drawer: ThreadPoolExecutor | None = None
_drawer_made = threading.Lock()
_on_drawer = threading.local()


def _forget_drawer() -> None:
    """In a forked child: the parent's drawing thread is not there (threads do not cross a
    fork), nor may a lock held at the fork ever be released."""
    global _drawer, _drawer_made  # noqa: PLW0603 - per process
    _drawer, _drawer_made = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_drawer)


def drawn(draw: Callable[[], R]) -> R:
    """What ``draw`` returns (or raises), run on this process's one drawing thread: anything
    that builds, measures or saves a matplotlib figure goes through here, one at a time.

    One thread, not a lock taken by whichever thread asks: matplotlib keeps its fonts per
    thread (an FT2Font is not thread-safe, so its cache is keyed by the thread), and the CJK
    faces cost about 6.5 MB a thread; a server worker whose four threads had each drawn a
    chart held four sets (measured: a worker's peak grew by about 25 MB over the dashboard's
    charts, bench/ #8). ``draw`` runs in a copy of the caller's context (the request's
    locale and ``g``) while the caller waits; a ``drawn`` inside ``draw`` runs at once."""
    if getattr(_on_drawer, "yes", False):
        return draw()
    context = contextvars.copy_context()
    return _executor().submit(context.run, _on_drawing_thread, draw).result()


def _on_drawing_thread(draw: Callable[[], R]) -> R:
    _on_drawer.yes = True
    with RENDER_LOCK:
        return draw()


def _executor() -> ThreadPoolExecutor:
    """This process's drawing thread, made on first use (a forked worker makes its own)."""
    global _drawer  # noqa: PLW0603 - one per process
    with _drawer_made:
        if _drawer is None:
            _drawer = ThreadPoolExecutor(1, thread_name_prefix="mapservice-draw")
        return _drawer


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
