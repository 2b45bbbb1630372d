"""Headless Chromium for the browser tests, and a live server for it to load.

Chromium is Debian's (``/usr/bin/chromium``) driven through its chromedriver by Selenium; it is
launched with a fresh profile and with every background network feature off, so the only
requests a page makes are the ones the app's own HTML and scripts ask for.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    return path


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="mapservice-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    if width < 500:  # a headless window is at least 500 px wide: emulate the phone exactly
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 3, "mobile": True},
        )
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with waitress (the production server) on a free loopback port."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Closed by its own thread, between two turns of its loop: closed from here, the
        # sockets could vanish while the loop waited on them in select() (EBADF in the server's
        # thread, seen once when both databases' suites ran at the same time).
        server.trigger.pull_trigger(server.close)
        thread.join(timeout=5)
