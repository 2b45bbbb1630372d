"""Security headers: strict CSP (scripts only from the app), no sniffing, framing only for
the embeddable map."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/login", "/venues/", "/map", "/api/v1/venues"])
def test_every_response_carries_the_policy(client, path):
    resp = client.get(path)
    csp = resp.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    )
    assert "object-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_only_the_embed_may_be_framed(client, make):
    make.committee(with_streets=False)
    resp = client.get("/map/embed")
    assert resp.status_code == 200
    assert "frame-ancestors *" in resp.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in resp.headers


def test_templates_have_no_inline_scripts():
    """Inline scripts would be blocked by the CSP; data blocks (application/json) are fine, and
    so is the folium maps' code, which its response's CSP names by hash (``_map_parts.html``,
    ``data-csp-hashed``; tests/test_maps_csp.py checks the pages)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    offenders = []
    for path in root.rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", path.read_text(encoding="utf-8")):
            hashed = path.name == "_map_parts.html" and tag == "<script data-csp-hashed>"
            if "src=" not in tag and "application/json" not in tag and not hashed:
                offenders.append(f"{path.relative_to(root)}: {tag}")
        if re.search(
            r"\son(click|load|change|submit|error|input)=", path.read_text(encoding="utf-8")
        ):
            offenders.append(f"{path.relative_to(root)}: inline event handler")
    assert offenders == []


def test_session_cookie_flags(client, make):
    from tests.conftest import login

    committee = make.committee(with_streets=False)
    make.admin(committee, username="admin")
    resp = login(client, "admin")
    cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_nul_characters_are_refused_everywhere(client, make):
    from tests.conftest import login

    committee = make.committee(with_streets=False)
    make.admin(committee, username="admin")
    login(client, "admin")
    assert client.post("/units/new", data={"name": "坏\x00名", "kind": "soe"}).status_code == 400
    assert client.get("/venues/?q=a%00b").status_code == 400
    resp = client.post(
        "/api/v1/venues", data='{"name": "a\\u0000"}', content_type="application/json"
    )
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "http_400"


def test_oversized_requests_are_refused_with_413(app, client, make):
    from tests.conftest import login

    app.config["MAX_CONTENT_LENGTH"] = 1024
    committee = make.committee(with_streets=False)
    make.admin(committee, username="admin")
    login(client, "admin")
    big = {"file": (__import__("io").BytesIO(b"x" * 5000), "venues.csv")}
    page = client.post("/import/venues", data=big, content_type="multipart/form-data")
    assert page.status_code == 413
    api = client.post(
        "/api/v1/venues", data="{" + " " * 5000 + "}", content_type="application/json"
    )
    assert api.status_code == 413 and api.get_json()["error"]["code"] == "http_413"
