"""Configuration from the environment, with defaults that work on a fresh machine.

``DATABASE_URL`` defaults to an SQLite file under ``instance/``; the secret key is never
hard-coded: when ``MAPSERVICE_SECRET_KEY`` is unset one is generated on first run and kept in
``instance/secret_key`` (mode 0600) so sessions survive restarts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = ROOT / "instance"


def _secret_key(instance: Path) -> str:
    env = os.environ.get("MAPSERVICE_SECRET_KEY")
    if env:
        return env
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the settings dict: environment first, then ``overrides`` (tests, notebooks)."""
    overrides = dict(overrides or {})
    instance = Path(
        overrides.pop("INSTANCE_PATH", os.environ.get("MAPSERVICE_INSTANCE", DEFAULT_INSTANCE))
    )
    cfg: dict[str, Any] = {
        "INSTANCE_PATH": instance,
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'mapservice.db'}"),
        "TIMEZONE": os.environ.get("MAPSERVICE_TIMEZONE", "Asia/Shanghai"),
        "BABEL_DEFAULT_LOCALE": os.environ.get("MAPSERVICE_LANGUAGE", "zh_CN"),
        "LANGUAGES": ["zh_CN", "en"],
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAPSERVICE_MAX_UPLOAD_MB", "10")) * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("MAPSERVICE_HTTPS", "") == "1",
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_I18N_ENABLED": True,
        # Shared state of a city's instances (the API rate limit); unset: counted per machine.
        "REDIS_URL": os.environ.get("MAPSERVICE_REDIS_URL", ""),
        # Seconds between tries of a Redis found down (meanwhile: counted on this machine).
        "REDIS_RETRY_SECONDS": float(os.environ.get("MAPSERVICE_REDIS_RETRY_SECONDS", "5") or 5),
        # Unset: Redis if configured, else this machine's counter file (api/ratelimit.py).
        "RATELIMIT_STORAGE_URI": os.environ.get("MAPSERVICE_RATELIMIT_STORAGE", ""),
        "API_RATE_LIMIT": os.environ.get("MAPSERVICE_API_RATE_LIMIT", "600 per minute"),
        # Base maps of the one map: comma list of osm, tianditu, amap, none (see core.mapdata).
        "MAPSERVICE_TILES": os.environ.get("MAPSERVICE_TILES", "none"),
        "MAPSERVICE_TIANDITU_KEY": os.environ.get("MAPSERVICE_TIANDITU_KEY", ""),
        # Booking notices by e-mail as well as in-app; unset host = in-app only.
        "MAPSERVICE_SMTP_HOST": os.environ.get("MAPSERVICE_SMTP_HOST", ""),
        "MAPSERVICE_SMTP_PORT": int(os.environ.get("MAPSERVICE_SMTP_PORT", "25")),
        "MAPSERVICE_SMTP_USER": os.environ.get("MAPSERVICE_SMTP_USER", ""),
        "MAPSERVICE_SMTP_PASSWORD": os.environ.get("MAPSERVICE_SMTP_PASSWORD", ""),
        "MAPSERVICE_SMTP_FROM": os.environ.get("MAPSERVICE_SMTP_FROM", "mapservice@localhost"),
        "MAPSERVICE_SMTP_STARTTLS": os.environ.get("MAPSERVICE_SMTP_STARTTLS", ""),
        # Proxies in front of the app that set X-Forwarded-For/-Proto/-Host (werkzeug's
        # ProxyFix); 0: the app faces clients directly and ignores those headers.
        "TRUSTED_PROXIES": int(os.environ.get("MAPSERVICE_TRUSTED_PROXIES", "0") or 0),
        # /metrics answers loopback clients, and others sending this bearer token (unset: none).
        "METRICS_TOKEN": os.environ.get("MAPSERVICE_METRICS_TOKEN", ""),
        # "json": one JSON line per request (with a request id) on stderr; else no request log.
        "LOG_FORMAT": os.environ.get("MAPSERVICE_LOG_FORMAT", ""),
        # The worker's nightly backup: where, how many to keep, at what local hour.
        "BACKUP_DIR": os.environ.get("MAPSERVICE_BACKUP_DIR", str(instance / "backups")),
        "BACKUP_KEEP": int(os.environ.get("MAPSERVICE_BACKUP_KEEP", "7")),
        "BACKUP_HOUR": int(os.environ.get("MAPSERVICE_BACKUP_HOUR", "3")),
        # Minutes after a booking's start before the worker marks a confirmed booking no-show
        # at a venue whose unit checks groups in.
        "NO_SHOW_GRACE_MINUTES": int(os.environ.get("MAPSERVICE_NO_SHOW_GRACE_MINUTES", "60")),
        # The worker's hourly digest of new requests to each unit: local hours START-END
        # (8-20: from 08:00 to 19:59), or "off"; its link to the approval queue starts with
        # the public address (e.g. https://booking.example.org; unset: no link).
        "DIGEST_HOURS": os.environ.get("MAPSERVICE_DIGEST_HOURS", "8-20"),
        "PUBLIC_URL": os.environ.get("MAPSERVICE_PUBLIC_URL", ""),
        # Seconds an attempt on an account under attack waits are multiplied by this (tests: 0).
        "LOGIN_DELAY_SCALE": 1.0,
    }
    cfg.update(overrides)
    if "SECRET_KEY" not in cfg:
        cfg["SECRET_KEY"] = _secret_key(Path(cfg["INSTANCE_PATH"]))
    return cfg
