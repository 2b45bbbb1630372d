"""The browser names of the session list on the account page."""

import pytest

from mapservice.core.useragent import browser_label


@pytest.mark.parametrize(
    ("ua", "label"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " HeadlessChrome/156.0.0.0 Safari/537.36",
            "Chrome 156 · Linux",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; V2309A Build/UP1A; wv) AppleWebKit/537.36 (KHTML,"
            " like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065"
            " MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64",
            "WeChat 8 · Android",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML,"
            " like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
            "Safari 17 · iOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge 131 · Windows",
        ),
        ("Werkzeug/3.1.9", "Werkzeug/3.1.9"),
        ("", "—"),
    ],
)
def test_browser_label(ua: str, label: str) -> None:
    assert browser_label(ua) == label
