"""Translation for the core, without Flask.

The web layer (and the CLI) choose the language per request or command with ``use_locale``;
core code calls ``_()``. Templates use Flask-Babel over the same ``messages`` catalogue in
``mapservice/translations``, so one .po file holds every string.
"""

from __future__ import annotations

import gettext as _gettext
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
LANGUAGES = ("zh_CN", "en")
_current: ContextVar[str] = ContextVar("mapservice_locale", default="zh_CN")
_cache: dict[str, _gettext.NullTranslations] = {}


def compile_catalogs(directory: Path = TRANSLATIONS_DIR) -> None:
    """Compile every stale ``messages.po`` to ``.mo`` (cheap; run at start-up). Processes that
    start together (two test runs, a server and a command) each write a file of their own and
    move it into place, so none reads or replaces a half-written one."""
    for po in directory.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh)
        tmp = mo.with_suffix(f".mo.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalog)
        tmp.replace(mo)


def translations(locale: str) -> _gettext.NullTranslations:
    if locale not in _cache:
        _cache[locale] = _gettext.translation(
            "messages", TRANSLATIONS_DIR, languages=[locale], fallback=True
        )
    return _cache[locale]


def current_locale() -> str:
    return _current.get()


def lang() -> str:
    """Short language code for the enums' labels: ``zh`` or ``en``."""
    return "en" if _current.get().startswith("en") else "zh"


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = _current.set(locale if locale in LANGUAGES else "zh_CN")
    try:
        yield
    finally:
        _current.reset(token)


def set_locale(locale: str) -> None:
    """Set the locale for the rest of this context (a request or a CLI command)."""
    _current.set(locale if locale in LANGUAGES else "zh_CN")


def _(msgid: str, /, **params: object) -> str:
    """Translate ``msgid`` into the current locale and fill ``%(name)s`` placeholders."""
    text = translations(_current.get()).gettext(msgid)
    return text % params if params else text


def N_(msgid: str, /) -> str:
    """Mark ``msgid`` for the catalogue without translating it here: the text stays English
    where it is stored (the OpenAPI document) and is translated where a page shows it."""
    return msgid


gettext = _
