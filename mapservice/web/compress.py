"""gzip for the responses that are worth it (the map shell, its data, the vendored scripts),
with a strong ETag so a revisit costs a 304. Done here in a few lines rather than with a
response-compression extension: only text bodies of known size are compressed, and the
compressed bytes of immutable bodies can be cached by the caller."""

from __future__ import annotations

import gzip
import hashlib

from flask import Response, request

MIN_SIZE = 256
LEVEL = 6


def accepts_gzip() -> bool:
    return "gzip" in request.accept_encodings


def gzip_bytes(body: bytes) -> bytes:
    """gzip with a fixed mtime, so equal bodies give equal bytes (and equal ETags)."""
    return gzip.compress(body, compresslevel=LEVEL, mtime=0)


def etag_of(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=12).hexdigest()


def finish(response: Response, *, gzipped: bytes | None = None) -> Response:
    """Add an ETag (answering If-None-Match with 304) and gzip the body if the client takes
    it. ``gzipped`` may carry the already-compressed body (from a cache)."""
    if (
        response.status_code != 200
        or response.direct_passthrough
        or response.is_streamed
        or "Content-Encoding" in response.headers
    ):
        return response
    body = response.get_data()
    use_gzip = accepts_gzip() and (gzipped is not None or len(body) >= MIN_SIZE)
    # Each representation has its own strong tag.
    tag = etag_of(body) + ("-gz" if use_gzip else "")
    response.vary.add("Accept-Encoding")
    response.set_etag(tag)
    if tag in request.if_none_match:
        response.status_code = 304
        response.set_data(b"")
        return response
    if use_gzip:
        response.set_data(gzipped if gzipped is not None else gzip_bytes(body))
        response.headers["Content-Encoding"] = "gzip"
    return response
