"""A small declarative layer for the JSON API: each endpoint states its method, path, query and
body schemas, response schema, status and required scope once; the same declaration validates
the request, serialises the response and writes the OpenAPI 3.1 document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mapservice.api.schemas import Error, dump
from mapservice.core.errors import DomainError
from mapservice.core.i18n import _
from mapservice.db import utcnow
from mapservice.models import ApiToken, User
from mapservice.operations import tokens
from mapservice.policy.tokens import token_allows
from mapservice.web.database import get_db, reads_only

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(DomainError):
    """An error with an explicit status (auth failures, bad JSON)."""

    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(code, message)
        self.status = status
        self.fields = fields or {}


@dataclass
class Endpoint:
    method: str
    path: str  # OpenAPI style: /venues/{venue_id}
    summary: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    scope: str | None = None  # None: public (a token, if given, must still be valid)
    errors: tuple[int, ...] = ()
    path_params: tuple[str, ...] = field(default_factory=tuple)
    module: str = ""  # the module that declares the view


ENDPOINTS: list[Endpoint] = []


def api_user() -> User | None:
    user: User | None = g.get("api_user")
    return user


def db() -> Session:
    return get_db()


def _authenticate(scope: str | None) -> None:
    header = request.headers.get("Authorization", "")
    g.api_user = None
    g.api_token = None
    if header:
        kind, _sep, secret = header.partition(" ")
        token = tokens.verify(db(), secret.strip()) if kind.lower() == "bearer" else None
        if token is None:
            raise ApiError(
                401, "invalid_token", _("The access token is missing, revoked or wrong.")
            )
        g.api_user, g.api_token = token.user, token
        if not token_allows(token, scope):
            raise ApiError(
                403, "insufficient_scope", _("This token lacks the '%(scope)s' scope.", scope=scope)
            )
        # Its use is noted after the request, decided now on what was just read: the view
        # may expire the objects (a booking does), and reading the token again costs a query.
        _touch(token)
    elif scope is not None:
        raise ApiError(
            401, "unauthenticated", _("Send a personal access token: 'Authorization: Bearer …'.")
        )


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = {
            ".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()
        }
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields) from None


def endpoint(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    scope: str | None = None,
    errors: tuple[int, ...] = (),
    writes: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an API view. The view receives ``query=`` and ``body=`` already validated and
    returns an instance of ``response`` (or None for 204). A GET reads without a transaction
    of its own (:func:`~mapservice.web.database.reads_only`) unless ``writes`` says it may
    write (the stats, which first recount the days their aggregates have stale)."""
    rule = path.replace("{", "<int:").replace("}", ">")
    params = tuple(p.split("}")[0] for p in path.split("{")[1:])
    spec = Endpoint(
        method, path, summary, tag, query, body, response, status, scope, errors, params
    )
    ENDPOINTS.append(spec)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec.module = fn.__module__

        @wraps(fn)
        def view(**kwargs: Any) -> Any:
            if method == "GET" and not writes:
                reads_only()  # PostgreSQL: no BEGIN/COMMIT round trips (see there)
            _authenticate(scope)
            extra: dict[str, Any] = {}
            if query is not None:
                extra["query"] = _validate(query, request.args.to_dict())
            if body is not None:
                try:
                    data = request.get_json(silent=True)
                except RecursionError:  # a body nested thousands of levels deep
                    data = None
                if data is None:
                    raise ApiError(400, "invalid_json", _("The body must be a JSON object."))
                extra["body"] = _validate(body, data)
            result = fn(**kwargs, **extra)
            if result is None:
                return Response(status=204)
            return jsonify(dump(result)), status

        bp.add_url_rule(rule, fn.__name__, view, methods=[method])
        return view

    return decorate


TOUCH_EVERY = timedelta(minutes=1)


def _touch(token: Any) -> None:
    """Ask for the token's last use to be noted once the request is over (see touch_later)."""
    if token.last_used_at is None or utcnow() - token.last_used_at >= TOUCH_EVERY:
        g.touch_token_id = token.id


def touch_later(_exc: BaseException | None) -> None:
    """Note when a token was last used: at most once a minute, after the request's own
    transaction has ended, in a short transaction that never waits long for SQLite's write
    lock and never fails anything — a read request stays a read."""
    token_id = g.pop("touch_token_id", None)
    if token_id is None:
        return
    # One connection throughout: the short busy timeout must be set back on the very
    # connection it was set on (a session may hand back a different pooled connection after
    # its commit, which would leave a 100 ms timeout behind for a booking's BEGIN IMMEDIATE).
    engine: Engine = current_app.extensions["db_engine"]
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        try:
            if sqlite:
                conn.exec_driver_sql("PRAGMA busy_timeout=100")
            conn.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow())
            )
            conn.commit()
        except OperationalError:  # busy: a later request will note it
            conn.rollback()
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA busy_timeout=30000")
                conn.rollback()


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    payload = Error.model_validate({"error": body}).model_dump(mode="json", exclude_none=True)
    response = jsonify(payload)
    response.status_code = status
    for k, v in (headers or {}).items():
        response.headers[k] = v
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mapservice"'
    return response


def config(name: str, default: Any = None) -> Any:
    return current_app.config.get(name, default)
