"""Issue 23, item 1: a session really ends. A cookie copied before log-out, a password change,
a password reset, a set-password link, a role change or a deactivation opens nothing
afterwards (it is anonymous: pages redirect to log-in, no token can be minted with it); "log
out everywhere else" ends the others and keeps this browser; each live session is listed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from mapservice.db import utcnow
from mapservice.models import ApiToken, LoginSession
from mapservice.operations import accounts
from mapservice.operations.users import reset_password
from tests.conftest import PASSWORD, login, reload

NEW = "a-new-password-2026"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def people(make: Any) -> dict[str, Any]:
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    return {
        "admin": make.admin(committee, username="admin"),
        "sec": make.secretary(unit, username="sec"),
    }


def signed_in(app: Any, username: str, agent: str = "Browser A") -> Any:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    assert login(client, username).status_code == 302
    return client


def copy_of(app: Any, client: Any) -> Any:
    """Another client holding the same cookie (what a thief copied), with the same browser
    name (Flask-Login's "strong" protection only compares address and user agent)."""
    thief = app.test_client()
    thief.environ_base["HTTP_USER_AGENT"] = client.environ_base["HTTP_USER_AGENT"]
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def is_signed_in(client: Any) -> bool:
    return client.get("/bookings/").status_code == 200


def tokens_of(db: Any) -> int:
    reload(db)
    return int(db.scalar(select(func.count()).select_from(ApiToken)) or 0)


def test_a_cookie_copied_before_log_out_is_anonymous_after(app, db, people):
    client = signed_in(app, "sec")
    thief = copy_of(app, client)
    assert is_signed_in(thief)
    assert client.post("/logout").status_code == 302
    assert not is_signed_in(thief)
    assert thief.get("/bookings/").headers["Location"].startswith("/login")
    # ... and cannot mint an API token.
    assert thief.post("/account/tokens", data={"scopes": "read"}).status_code == 302
    assert tokens_of(db) == 0


@pytest.mark.parametrize("how", ["own change", "console reset", "link", "role", "deactivated"])
def test_credential_changes_end_every_earlier_session(app, db, people, how):
    victim = signed_in(app, "sec", "Phone")
    elsewhere = signed_in(app, "sec", "Office PC")
    assert is_signed_in(victim) and is_signed_in(elsewhere)
    user = people["sec"]
    if how == "own change":
        assert (
            victim.post("/account/password", data={"current": PASSWORD, "new": NEW}).status_code
            == 302
        )
        assert is_signed_in(victim)  # the browser that changed it goes on
    else:
        reload(db)
        if how == "console reset":
            reset_password(db, None, user, NEW)
        elif how == "link":
            now = utcnow()
            secret = accounts.issue_link(db, people["admin"], user, now).rsplit("/", 1)[-1]
            accounts.redeem_link(db, secret, NEW, now)
        elif how == "role":
            user.role, user.unit_id = "committee_admin", None
        else:
            user.active = False
        db.commit()
        assert not is_signed_in(victim)
    assert not is_signed_in(elsewhere)
    assert elsewhere.post("/account/tokens", data={"scopes": "read"}).status_code == 302
    assert tokens_of(db) == 0


def test_log_out_everywhere_else_and_one_session(app, db, people):
    here = signed_in(app, "admin", "Desktop Chromium")
    phone = signed_in(app, "admin", "Phone Safari")
    tablet = signed_in(app, "admin", "Tablet")
    page = here.get("/account/").get_data(as_text=True)
    assert page.count("data-session-id=") == 3 and 'id="this-session"' in page
    assert "Phone Safari" in page and "Tablet" in page
    # End the tablet's session only.
    reload(db)
    tablet_row = db.scalars(select(LoginSession).where(LoginSession.user_agent == "Tablet")).one()
    here.post("/account/sessions/end", data={"session_id": str(tablet_row.id)})
    assert not is_signed_in(tablet) and is_signed_in(phone) and is_signed_in(here)
    # Everywhere else.
    done = here.post("/account/sessions/end", data={"scope": "others"}, follow_redirects=True)
    assert "1" in done.get_data(as_text=True)
    assert not is_signed_in(phone) and is_signed_in(here)
    page = here.get("/account/").get_data(as_text=True)
    assert page.count("data-session-id=") == 1


def test_one_cannot_end_someone_elses_session(app, db, people):
    admin = signed_in(app, "admin")
    sec = signed_in(app, "sec")
    reload(db)
    admin_row = db.scalars(
        select(LoginSession).where(LoginSession.user_id == people["admin"].id)
    ).one()
    assert (
        sec.post("/account/sessions/end", data={"session_id": str(admin_row.id)}).status_code == 404
    )
    assert is_signed_in(admin)


def test_a_forged_user_id_without_a_session_is_anonymous(app, people):
    """Signed cookies alone prove nothing now: a cookie made with the app's own key (as a
    leaked key would allow) but no live session row is anonymous."""
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = str(people["admin"].id)
        sess["_fresh"] = True
    assert not is_signed_in(client)
