"""The request log (``MAPSERVICE_LOG_FORMAT=json``): one JSON line per request on the
``mapservice.requests`` logger (stderr unless the logger has handlers of its own — the
journal under systemd), with a request id. The id is nginx's ``X-Request-ID`` when it sent
one (deploy/nginx/mapservice.conf does), else a new one; the answer carries it back in
``X-Request-ID``, so a user's report, nginx's log and this line meet. Off by default."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, request

logger = logging.getLogger("mapservice.requests")

#: What a request id may look like (nginx's $request_id: 32 hex digits); anything else a client
#: sends is replaced, so nothing odd reaches the log.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def init_app(app: Flask) -> None:
    if str(app.config.get("LOG_FORMAT") or "").lower() != "json":
        return
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)

    @app.before_request
    def _request_id() -> None:
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if REQUEST_ID.match(sent) else uuid.uuid4().hex
        g.request_log_started = time.perf_counter()

    @app.after_request
    def _log(response: Response) -> Response:
        started = g.pop("request_log_started", None)
        if started is None:
            return response
        rule = request.url_rule
        user = g.get("_login_user")
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": g.request_id,
            "method": request.method,
            "path": request.path,
            "route": rule.endpoint if rule is not None else "unmatched",
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "client": request.remote_addr,
            "user": getattr(user, "id", None),
            "bytes": response.content_length,
        }
        response.headers["X-Request-ID"] = g.request_id
        logger.info(json.dumps(line, ensure_ascii=False))
        return response
