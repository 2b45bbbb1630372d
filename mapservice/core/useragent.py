"""A browser as its owner recognises it in a list of sessions ("Chrome 131 · Android"), from
the User-Agent header it sent; the raw header when nothing is recognised."""

from __future__ import annotations

import re

#: First match wins: the specific ones (WeChat, Edge, …) before the engines they build on.
_BROWSERS = [
    ("WeChat", r"MicroMessenger/(\d+)"),
    ("DingTalk", r"DingTalk/(\d+)"),
    ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"),
    ("Opera", r"OPR/(\d+)"),
    ("Firefox", r"(?:Firefox|FxiOS)/(\d+)"),
    ("Chrome", r"(?:HeadlessChrome|Chrome|CriOS)/(\d+)"),
    ("Safari", r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"),
]
_SYSTEMS = [
    ("HarmonyOS", r"HarmonyOS|OpenHarmony"),
    ("Android", r"Android"),
    ("iOS", r"iPhone|iPad|iPod"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("Linux", r"Linux|X11"),
]


def browser_label(user_agent: str) -> str:
    ua = user_agent or ""
    browser = next(
        (f"{name} {m.group(1)}" for name, rx in _BROWSERS if (m := re.search(rx, ua))), ""
    )
    system = next((name for name, rx in _SYSTEMS if re.search(rx, ua)), "")
    if browser or system:
        return " · ".join(part for part in (browser, system) if part)
    return ua[:60] or "—"
