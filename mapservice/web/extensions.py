"""Flask-Login, Flask-WTF CSRF, Flask-Babel, and the language choice."""

from __future__ import annotations

from typing import Any

from babel import support
from flask import Flask, Request, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import Babel, Domain
from flask_login import LoginManager, current_user
from flask_wtf import CSRFProtect

from mapservice.core import i18n
from mapservice.core.ids import as_id
from mapservice.core.vocab import (
    ApplicationStatus,
    BookableBy,
    BookingStatus,
    Crs,
    Role,
    UnitKind,
    UnitStatus,
    VenueType,
)
from mapservice.models import User

login_manager = LoginManager()
csrf = CSRFProtect()
LANG_COOKIE = "lang"


class CatalogueDomain(Domain):  # type: ignore[misc]
    """Flask-Babel over the same catalogues as ``mapservice.core.i18n``, looked up by the
    locale name the app uses (``zh_CN``); Babel itself would look for ``zh_Hans_CN``."""

    def get_translations(self) -> support.Translations:
        locale = i18n.current_locale()
        cache = self.get_translations_cache(None)
        if locale not in cache:
            cache[locale] = support.Translations.load(str(i18n.TRANSLATIONS_DIR), [locale])
        return cache[locale]


babel = Babel()
babel.domain_instance = CatalogueDomain()


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened without building its signer when the request
    carries no session cookie (every API client's request, and a first visit): the signer
    (an HMAC key derivation, built per request by Flask) was measured at about 1.5 % of the
    workers' CPU under the HTTP mix (bench/ #7), for a cookie that was not there. An empty
    session is what Flask opens then too; one that gets written is signed as before."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def select_locale() -> str:
    choice = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if choice in i18n.LANGUAGES:
        return choice
    return "zh_CN"


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    i18n.compile_catalogs()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(i18n.TRANSLATIONS_DIR)
    babel.init_app(app, locale_selector=select_locale)

    # Before CSRFProtect's check: a refusal it raises (bad token, or 413 while it reads an
    # oversized form) is then answered in the chosen language too.
    @app.before_request
    def _locale() -> None:
        g.locale = select_locale()
        i18n.set_locale(g.locale)

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load(user_id: str) -> User | None:
        from mapservice.web.auth import resume_session

        found = as_id(user_id)
        return resume_session(found) if found is not None else None

    @login_manager.unauthorized_handler
    def _unauthorized() -> Any:
        from flask import flash, redirect, url_for

        flash(i18n._("Please log in first."), "warning")
        return redirect(url_for("auth.login", next=request.full_path))

    @app.after_request
    def _remember_lang(response: Any) -> Any:
        chosen = request.args.get("lang")
        if chosen in i18n.LANGUAGES:
            response.set_cookie(
                LANG_COOKIE, chosen, max_age=365 * 86400, samesite="Lax", httponly=True
            )
        return response

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        lang = i18n.lang()
        return {
            "lang": lang,
            "locale": i18n.current_locale(),
            "VenueType": VenueType,
            "UnitKind": UnitKind,
            "UnitStatus": UnitStatus,
            "ApplicationStatus": ApplicationStatus,
            "Role": Role,
            "Crs": Crs,
            "BookableBy": BookableBy,
            "BookingStatus": BookingStatus,
            "me": current_user if current_user.is_authenticated else None,
            "zone_label": zone_label,
            "with_lang": with_lang,
        }


def with_lang(locale: str) -> str:
    """This page's address in another language: its query (a committee, a filter) kept."""
    from urllib.parse import urlencode

    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return request.path + "?" + urlencode([*args, ("lang", locale)])


#: Zones people in China name as Beijing time.
BEIJING_ZONES = {"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC"}


def zone_label(tz: Any) -> str:
    """A time zone as a reader names it: Beijing time, or its offset from UTC now."""
    from datetime import datetime

    offset = datetime.now(tz).strftime("%z")
    utc = f"UTC{offset[:3]}:{offset[3:]}"
    if getattr(tz, "key", "") in BEIJING_ZONES and offset == "+0800":
        return i18n._("Beijing time, %(utc)s", utc=utc)
    return utc
