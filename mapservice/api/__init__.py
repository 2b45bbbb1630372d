"""JSON API v1: personal access tokens, one error shape, rate limits, an OpenAPI 3.1 document
generated from the schemas that validate the requests."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import HTTPException

from mapservice.api import (
    activities,
    applications,
    audit,
    bookings,
    groups,
    plans,
    schemas,
    stats,
    venues,
)
from mapservice.api.framework import ENDPOINTS, ApiError, Endpoint, bp, error_response, touch_later
from mapservice.core.errors import (
    BookingConflict,
    DomainError,
    ImportRejected,
    RuleViolation,
    ValidationFailed,
)
from mapservice.core.i18n import _

#: The endpoint modules, imported for the endpoints they register; the API document lists
#: their endpoints in this order (each module's in the order it declares them).
ENDPOINT_MODULES = (venues, audit, bookings, groups, stats, applications, plans, activities)


def ordered_endpoints() -> list[Endpoint]:
    order = [m.__name__ for m in ENDPOINT_MODULES]
    return sorted(ENDPOINTS, key=lambda e: order.index(e.module))


STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No content",
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Invalid",
    429: "Too many requests",
}


def _rate_key() -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        from mapservice.operations.tokens import digest

        return "token:" + digest(header[7:].strip())
    return "addr:" + (get_remote_address() or "-")


def init_app(app: Flask) -> None:
    """Register the API with its own rate limiter (per token, else per address), counting in
    Redis when ``REDIS_URL`` is set, else on this machine (:mod:`mapservice.api.ratelimit`)."""
    from mapservice.api import ratelimit

    uri, options = ratelimit.storage_settings(app.config)
    app.config["RATELIMIT_STORAGE_URI"], app.config["RATELIMIT_STORAGE_OPTIONS"] = uri, options
    app.config.setdefault("API_RATE_LIMIT", "600 per minute")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter = Limiter(key_func=_rate_key, default_limits=[], app=app)
    if isinstance(limiter.storage, ratelimit.ChainStorage) and app.config.get("REDIS_URL"):
        limiter.storage.probe()  # Redis down or misconfigured: said once, at start
    limiter.limit(lambda: current_app.config["API_RATE_LIMIT"])(bp)
    app.extensions["api_limiter"] = limiter
    from mapservice.web.extensions import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.teardown_request(touch_later)

    @app.route("/api/v1/openapi.json")
    def openapi_json() -> Any:
        return jsonify(openapi_document())

    @app.route("/api/v1/docs")
    def api_docs() -> Any:
        return render_template("api/docs.html", doc=openapi_document())


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    return error_response(
        exc.status, {"code": exc.code, "message": exc.message, "fields": exc.fields}
    )


@bp.errorhandler(BookingConflict)
def _conflict(exc: BookingConflict) -> Any:
    from mapservice.web.database import resolve_after_rollback

    resolve_after_rollback(exc)
    return error_response(409, bookings.conflict_body(exc))


@bp.errorhandler(RuleViolation)
def _rules(exc: RuleViolation) -> Any:
    return error_response(422, {"code": exc.code, "message": exc.message, "fields": exc.fields})


@bp.errorhandler(DomainError)
def _domain(exc: DomainError) -> Any:
    from mapservice.booking.engine import SeriesRejected

    body: dict[str, Any] = {"code": exc.code, "message": exc.message, "fields": {}}
    if isinstance(exc, ValidationFailed):
        body["fields"] = exc.fields
    if isinstance(exc, ImportRejected):
        body["fields"] = {str(i + 1): e for i, e in enumerate(exc.errors)}
    if isinstance(exc, SeriesRejected):
        body["occurrences"] = [schemas.dump(bookings.occurrence_out(o)) for o in exc.outcomes]
    return error_response(exc.status, body)


@bp.errorhandler(RateLimitExceeded)
def _limited(exc: RateLimitExceeded) -> Any:
    reset = getattr(g, "view_rate_limit", None)
    retry = "60"
    if reset is not None:
        import time

        retry = str(max(1, int(reset[1] - time.time())))
    return error_response(
        429,
        {"code": "rate_limited", "message": _("Too many requests; try again later.")},
        {"Retry-After": retry},
    )


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Any:
    status = exc.code or 500
    return error_response(status, {"code": f"http_{status}", "message": exc.description or ""})


def _params(spec: Any, refs: dict[str, Any]) -> list[dict[str, Any]]:
    out = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        }
        for name in spec.path_params
    ]
    if spec.query is not None:
        schema = spec.query.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}"
        )
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
            }
            if "description" in prop:
                param["description"] = prop["description"]
            out.append(param)
    return out


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, built from ENDPOINTS and their pydantic models."""
    models: set[type[BaseModel]] = {schemas.Error}
    for e in ENDPOINTS:
        for m in (e.body, e.response):
            if m is not None:
                models.add(m)
    _keys, defs = models_json_schema(
        [
            (m, "validation" if m in {e.body for e in ENDPOINTS} else "serialization")
            for m in sorted(models, key=lambda m: m.__name__)
        ],
        ref_template="#/components/schemas/{model}",
    )
    components = defs.get("$defs", {})
    paths: dict[str, Any] = {}
    error_ref = {"$ref": "#/components/schemas/Error"}
    for e in ordered_endpoints():
        op: dict[str, Any] = {
            "summary": e.summary,
            "operationId": e.method.lower() + "_" + re.sub(r"[^a-z0-9]+", "_", e.path).strip("_"),
            "tags": [e.tag],
            "parameters": _params(e, components),
            "responses": {},
        }
        if e.scope is not None:
            op["security"] = [{"bearer": [e.scope]}]
        else:
            op["security"] = [{}, {"bearer": ["read"]}]
        if e.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}
                    }
                },
            }
        ok: dict[str, Any] = {"description": STATUS_TEXT.get(e.status, "OK")}
        if e.response is not None:
            ok["content"] = {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{e.response.__name__}"}
                }
            }
        op["responses"][str(e.status)] = ok
        for status in e.errors:
            resp: dict[str, Any] = {
                "description": STATUS_TEXT.get(status, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
            if status == 429:
                resp["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
            op["responses"][str(status)] = resp
        paths.setdefault(e.path, {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mapservice API",
            "version": "1.0.0",
            "description": "Shared venues of Youth League committees: venues, availability,"
            " bookings.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


__all__ = ["init_app", "openapi_document"]
