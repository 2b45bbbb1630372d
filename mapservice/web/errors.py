"""Domain errors and HTTP errors mapped to responses in one place: JSON for API/XHR callers,
a page for browsers. No stack trace ever reaches a user."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from mapservice.core.errors import (
    BookingConflict,
    DomainError,
    ImportRejected,
    RuleViolation,
    ValidationFailed,
)
from mapservice.core.i18n import _


def _wants_json() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path.endswith((".json", ".geojson"))  # data endpoints (the map's)
        or request.accept_mimetypes.best == "application/json"
    )


def wants_json() -> bool:
    """Whether this request is from a script (API, XHR asking for JSON), not a page."""
    return _wants_json()


def _respond(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Any:
    if _wants_json():
        return jsonify(
            {"error": {"code": code, "message": message, "fields": fields or {}}}
        ), status
    return render_template(
        "error.html", status=status, code=code, message=message, fields=fields or {}
    ), status


def _conflict_json(exc: BookingConflict) -> dict[str, Any]:
    """A conflict for XHR callers: the occupied intervals (who, only for those allowed to
    see) and the proposed alternatives."""
    from mapservice.web.database import resolve_after_rollback

    resolve_after_rollback(exc)
    alts = exc.alternatives
    return {
        "code": exc.code,
        "message": exc.message,
        "fields": {},
        "conflicts": [
            {
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "units": c.units,
                "group": c.group,
            }
            for c in exc.conflicts
        ],
        "alternatives": {
            "windows": [[s.isoformat(), e.isoformat()] for s, e in getattr(alts, "windows", [])],
            "venues": [
                {"id": v.venue_id, "name": v.name, "unit": v.unit, "distance_m": v.distance_m}
                for v in getattr(alts, "venues", [])
            ],
        },
    }


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Any:
        fields = exc.fields if isinstance(exc, ValidationFailed | RuleViolation) else None
        if isinstance(exc, ImportRejected):
            fields = {str(i + 1): e for i, e in enumerate(exc.errors)}
        if isinstance(exc, BookingConflict) and _wants_json():
            return jsonify({"error": _conflict_json(exc)}), exc.status
        return _respond(exc.status, exc.code, exc.message, fields)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return _respond(
            400,
            "csrf",
            _(
                "The form has expired or is missing its security token;"
                " reload the page and try again."
            ),
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        messages = {
            400: _("The request was not understood."),
            401: _("Please log in first."),
            403: _("You are not allowed to do this."),
            404: _("The page or record was not found."),
            405: _("This method is not allowed here."),
            413: _("The upload is too large."),
        }
        status = exc.code or 500
        return _respond(status, f"http_{status}", messages.get(status, exc.description or ""))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error")
        return _respond(500, "internal", unexpected_message())


def unexpected_message() -> str:
    """What a crash did, truthfully: a page that failed to show changed nothing, but saying
    so reads as "your booking was lost"; a change either committed before the crash (the
    booking routes commit early) or was rolled back with the request."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return _(
            "Something went wrong on our side while showing this page; it has been logged."
            " Please try again later."
        )
    if g.get("db_committed"):
        return _(
            "Something went wrong on our side after your change was saved; please check the"
            " result before trying again."
        )
    return _("Something went wrong on our side; nothing was changed.")
