"""Behind proxies (``MAPSERVICE_TRUSTED_PROXIES=N``): werkzeug's ``ProxyFix`` takes the client's
address, scheme and host from the last N ``X-Forwarded-*`` entries, and leaves a request whose
chain is shorter than N as it arrived — so with N larger than the real chain every client has
the proxy's address (one log-in throttle and one anonymous rate limit for everyone). That is
said once per process, in the log, naming the setting; requests go on being served. A request
with no ``X-Forwarded-For`` at all (a health check straight to the instance) says nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)


class BehindProxies:
    """WSGI: ``ProxyFix`` for ``proxies`` proxies, warning once if a chain is shorter."""

    def __init__(self, app: Any, proxies: int) -> None:
        self.proxies = proxies
        self.fixed = ProxyFix(app, x_for=proxies, x_proto=proxies, x_host=proxies)
        self.warned = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not self.warned:
            chain = [
                a for a in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",") if a.strip()
            ]
            if 0 < len(chain) < self.proxies:
                self.warned = True
                log.warning(
                    "MAPSERVICE_TRUSTED_PROXIES=%s, but a request came through %s proxy"
                    " address(es) (X-Forwarded-For: %s): such requests keep the address of the"
                    " proxy nearest the app (%s), so clients share one log-in throttle and one"
                    " rate limit. Set it to the number of proxies in front of the app"
                    " (nginx alone: 1). Said once per process.",
                    self.proxies,
                    len(chain),
                    ", ".join(a.strip() for a in chain),
                    environ.get("REMOTE_ADDR", "-"),
                )
        return self.fixed(environ, start_response)
