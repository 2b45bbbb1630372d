"""The front page: the one map (the venue list, the dashboard and the rest are in the
navigation bar)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, url_for

bp = Blueprint("home", __name__)


@bp.route("/")
def index() -> Any:
    return redirect(url_for("map.page"))


@bp.route("/healthz")
def health() -> Any:
    return {"status": "ok"}
