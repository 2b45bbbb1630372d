"""Security headers on every response: a Content-Security-Policy as strict as the map allows
(scripts only from the app; images also from the configured tile servers), no MIME sniffing,
no referrer leaks, and framing allowed only for ``/map/embed``."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from flask import Flask, Response, g, request


def _tile_origins(app: Flask) -> list[str]:
    """Origins of the configured tile layers (allowed for images only)."""
    from mapservice.core.mapdata import tile_layers

    origins = set()
    layers = tile_layers(
        app.config.get("MAPSERVICE_TILES", "none"), app.config.get("MAPSERVICE_TIANDITU_KEY", "")
    )
    for layer in layers:
        for sub in layer.subdomains or "-":
            parts = urlsplit(layer.url.replace("{s}", sub))
            if parts.scheme in ("http", "https") and parts.netloc:
                origins.add(f"{parts.scheme}://{parts.netloc}")
    return sorted(origins)


def allow_inline_script(code: str) -> None:
    """Let this response's page run one inline ``<script>`` whose text is exactly ``code``:
    its SHA-256 joins ``script-src`` for this response only (the folium maps' code, which
    ``mapservice.maps.page`` makes byte-stable; a script the page did not name still does
    not run)."""
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    hashes: list[str] = g.setdefault("csp_script_hashes", [])
    hashes.append(f"'sha256-{digest}'")


def _has_nul() -> bool:
    """NUL characters in parameters, form fields or a JSON body: never meaningful, and
    PostgreSQL cannot store them (uploaded files are checked by their own readers)."""
    if any("\x00" in v for values in request.args.listvalues() for v in values):
        return True
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return any("\x00" in v for values in request.form.listvalues() for v in values)
    if request.is_json:
        raw = request.get_data(cache=True)
        return b"\x00" in raw or b"\\u0000" in raw
    return False


def init_app(app: Flask) -> None:
    tiles = " ".join(_tile_origins(app))

    @app.before_request
    def _refuse_nul() -> None:
        if _has_nul():
            from werkzeug.exceptions import BadRequest

            raise BadRequest("NUL characters are not allowed in any field.")

    @app.after_request
    def _headers(response: Response) -> Response:
        embed = request.path.startswith("/map/embed")
        policy = [
            "default-src 'self'",
            " ".join(["script-src 'self'", *g.get("csp_script_hashes", [])]),
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob: {tiles}".strip(),
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors *" if embed else "frame-ancestors 'self'",
        ]
        response.headers.setdefault("Content-Security-Policy", "; ".join(policy))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not embed:
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response
