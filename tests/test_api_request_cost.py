"""What every API request pays, cut without changing an answer (issue 21, #10): the token's
user is read without its groups (loaded by the first check that needs them), and a GET reads
on PostgreSQL without a transaction of its own (no BEGIN/COMMIT round trips) and may not
write."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, text, update

from mapservice.models import Booking, User, Venue
from mapservice.models.stats import venue_day_stale
from mapservice.operations.tokens import create_token, verify
from mapservice.web.database import get_db, reads_only

TZ = ZoneInfo("Asia/Shanghai")


def _slot(days: int, hour: int) -> tuple[str, str]:
    start = (datetime.now(TZ) + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )
    return start.isoformat(), (start + timedelta(hours=1)).isoformat()


@pytest.fixture
def world(make: Any, db: Any) -> dict[str, Any]:
    committee = make.committee()
    unit = make.unit(committee, "移动公司")
    first = make.group(committee, unit, "第一团支部")
    second = make.group(committee, unit, "第二团支部")
    stranger = make.group(committee, unit, "别人的团支部")
    booker = make.booker(first, username="booker")
    booker.groups = [first, second]  # books for two groups; the default is the first
    court = make.venue(unit, name="羽毛球馆", capacity_units=2, min_notice_minutes=0)
    _t, secret = create_token(db, None, booker, ["read", "book"])
    admin = make.admin(committee, username="admin")
    _t, admin_secret = create_token(db, None, admin, ["read"])
    db.commit()
    return {
        "headers": {"Authorization": f"Bearer {secret}"},
        "admin": {"Authorization": f"Bearer {admin_secret}"},
        "secret": secret,
        "court": court,
        "second": second,
        "stranger": stranger,
    }


def test_the_tokens_user_comes_without_groups_until_a_check_needs_them(app, db, world):
    from sqlalchemy import inspect

    with app.test_request_context("/api/v1/venues"):
        token = verify(get_db(), world["secret"])
        assert token is not None
        assert "groups" in inspect(token.user).unloaded  # not read with the token
        # The first check that reads them loads them: the booker's two groups.
        assert token.user.group_ids == {world["second"].id, token.user.group_id}


def test_booking_for_another_of_the_bookers_groups_still_allowed_and_a_strangers_refused(
    client, db, world
):
    start, end = _slot(3, 10)
    body = {"venue_id": world["court"].id, "start": start, "end": end, "units": 1}
    ok = client.post(
        "/api/v1/bookings", json={**body, "group_id": world["second"].id}, headers=world["headers"]
    )
    assert ok.status_code == 201, ok.get_data(as_text=True)
    assert ok.get_json()["bookings"][0]["group"] == "第二团支部"
    refused = client.post(
        "/api/v1/bookings",
        json={**body, "group_id": world["stranger"].id},
        headers=world["headers"],
    )
    assert refused.status_code in (403, 422), refused.get_data(as_text=True)
    db.expire_all()
    groups = db.scalars(select(Booking.group_id).where(Booking.venue_id == world["court"].id))
    assert list(groups) == [world["second"].id]


def test_a_get_reads_without_a_transaction_on_postgresql_and_may_not_write(app, db, world):
    court = world["court"]
    with app.test_request_context(f"/api/v1/venues/{court.id}"):
        reads_only()
        session = get_db()
        conn = session.connection()
        postgresql = conn.dialect.name == "postgresql"
        # PostgreSQL: the driver's connection is in autocommit (no BEGIN is sent); SQLite
        # keeps its transaction (its BEGIN costs no round trip).
        if postgresql:
            assert conn.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
        else:
            assert conn.in_transaction()
        assert session.get(Venue, court.id).name == "羽毛球馆"
        if postgresql:
            with pytest.raises(RuntimeError, match="reads_only"):
                session.execute(update(Venue).where(Venue.id == court.id).values(name="改名"))
            # Core and text statements on its connection too (no ORM event sees them).
            with pytest.raises(RuntimeError, match="reads_only"):
                session.connection().execute(delete(Booking).where(Booking.id == -1))
            with pytest.raises(RuntimeError, match="reads_only"):
                session.execute(text("UPDATE venues SET name = 'x' WHERE id = :i"), {"i": court.id})
            venue = session.get(Venue, court.id)
            venue.name = "又改名"
            with pytest.raises(RuntimeError, match="reads_only"):
                session.flush()
            session.rollback()
    db.expire_all()
    assert db.get(Venue, court.id).name == "羽毛球馆"  # nothing written either way


def test_after_a_get_the_next_writer_gets_a_transaction_again(app, client, db, world):
    """The pooled connection a GET used in autocommit goes back to the pool as it was: the
    booking after it is one transaction (a refused one leaves nothing behind)."""
    court = world["court"]
    for _ in range(3):
        assert client.get(f"/api/v1/venues/{court.id}", headers=world["headers"]).status_code == 200
    engine = app.extensions["db_engine"]
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]
    start, end = _slot(4, 11)
    body = {"venue_id": court.id, "start": start, "end": end, "units": 2}
    assert client.post("/api/v1/bookings", json=body, headers=world["headers"]).status_code == 201
    again = client.post("/api/v1/bookings", json=body, headers=world["headers"])
    assert again.status_code == 409
    availability = client.get(
        f"/api/v1/venues/{court.id}/availability",
        query_string={"from": start, "to": end},
        headers=world["headers"],
    )
    assert availability.status_code == 200
    assert [iv["free_units"] for iv in availability.get_json()["intervals"]] == [0]
    db.expire_all()
    assert db.scalar(select(User.username).where(User.username == "booker")) == "booker"
    count = len(list(db.scalars(select(Booking.id).where(Booking.venue_id == court.id))))
    assert count == 1


def test_the_stats_get_that_recounts_stale_days_runs_in_a_transaction(client, db, world):
    """/api/v1/stats/utilization first recounts the days the aggregates' log names (a write,
    under an advisory transaction lock on PostgreSQL): declared ``writes``, it keeps its
    transaction, answers, and leaves the log empty — not a 500 from the reads-only guard."""
    start, end = _slot(5, 9)
    body = {"venue_id": world["court"].id, "start": start, "end": end, "units": 1}
    assert client.post("/api/v1/bookings", json=body, headers=world["headers"]).status_code == 201
    assert db.scalar(select(func.count()).select_from(venue_day_stale)) > 0
    today = datetime.now(TZ).date()
    got = client.get(
        "/api/v1/stats/utilization",
        query_string={"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat()},
        headers=world["admin"],
    )
    assert got.status_code == 200, got.get_data(as_text=True)
    assert got.get_json()["total"]["venues"] == 1
    db.rollback()  # a new snapshot (SQLite's read transaction keeps its old one)
    assert db.scalar(select(func.count()).select_from(venue_day_stale)) == 0


def _statements(engine: Any) -> Any:
    """A list that collects every SQL statement ``engine`` runs while the context is open."""
    from contextlib import contextmanager

    from sqlalchemy import event

    @contextmanager
    def collecting() -> Any:
        seen: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", note)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", note)

    return collecting()


def test_the_token_and_its_user_are_one_statement_and_a_revoked_token_is_refused(
    app, client, db, world
):
    """The token is checked in one statement (its user with it); the answer is as before: a
    revoked token or a deactivated user's is refused, the scopes decide."""
    from mapservice.models import ApiToken

    court = world["court"]
    engine = app.extensions["db_engine"]
    path = f"/api/v1/venues/{court.id}"
    client.get(path, headers=world["headers"])  # the token's last use noted (once a minute)
    with _statements(engine) as seen:
        ok = client.get(path, headers=world["headers"])
    assert ok.status_code == 200 and ok.get_json()["properties"]["name"] == "羽毛球馆"
    assert len([s for s in seen if "api_tokens" in s]) == 1
    assert [s for s in seen if "api_tokens" in s and "users" in s]  # the user in the same one
    # Scopes: a read-only token may not book.
    start, end = _slot(3, 11)
    no = client.post(
        "/api/v1/bookings",
        json={"venue_id": court.id, "start": start, "end": end, "units": 1},
        headers=world["admin"],
    )
    assert no.status_code == 403 and no.get_json()["error"]["code"] == "insufficient_scope"
    db.execute(update(ApiToken).values(revoked_at=datetime.now(TZ)))
    db.commit()
    gone = client.get(path, headers=world["headers"])
    assert gone.status_code == 401 and gone.get_json()["error"]["code"] == "invalid_token"


def test_a_deactivated_users_token_is_refused(client, db, world):
    db.execute(update(User).where(User.username == "booker").values(active=False))
    db.commit()
    refused = client.get("/api/v1/venues", headers=world["headers"])
    assert refused.status_code == 401


def test_an_api_request_without_a_cookie_builds_no_session_signer(app, client, world, monkeypatch):
    """No session cookie (an API client): the session opens empty without building Flask's
    signer, and the answer sets no cookie; a browser's cookie is still read (logging in
    works, tests/test_auth*.py)."""
    built: list[int] = []
    interface = app.session_interface
    real = type(interface).get_signing_serializer

    def counting(self: Any, app_: Any) -> Any:
        built.append(1)
        return real(self, app_)

    monkeypatch.setattr(type(interface), "get_signing_serializer", counting)
    answer = client.get(f"/api/v1/venues/{world['court'].id}", headers=world["headers"])
    assert answer.status_code == 200
    assert built == []
    assert "Set-Cookie" not in answer.headers
    # With a cookie (whatever it holds) the signer reads it as before.
    client.set_cookie("session", "not-a-signed-value")
    assert client.get("/api/v1/venues", headers=world["headers"]).status_code == 200
    assert built


def test_the_rate_limit_headers_read_back_this_requests_own_count(app, tmp_path):
    """Within the request that counted, the count and its expiry (Flask-Limiter's
    X-RateLimit-* headers) come from this request's increment, without asking the counter
    file again; outside it, every read asks the file (another process's hits included)."""
    import threading
    import time

    from mapservice.api.ratelimit import LocalFileStorage

    path = str(tmp_path / "ratelimit.db")
    mine, other = LocalFileStorage(path=path), LocalFileStorage(path=path)
    asked: list[str] = []
    with app.test_request_context("/api/v1/venues"):
        assert mine.incr("k", 60) == 1
        mine._db().set_trace_callback(asked.append)
        # Another process, meanwhile (a thread: outside this request).
        counted: list[int] = []
        hit = threading.Thread(target=lambda: counted.append(other.incr("k", 60)))
        hit.start()
        hit.join()
        assert counted == [2]
        assert mine.get("k") == 1 and 59 < mine.get_expiry("k") - time.time() <= 60
        assert asked == []  # answered from the increment
        assert mine.get("other-key") == 0 and len(asked) == 1  # another counter: asked
        mine.clear("x")  # a reset or clear: nothing read back from before it
        assert mine.get("k") == 2
    with app.test_request_context("/api/v1/venues"):
        assert mine.get("k") == 2  # a new request: from the file
    assert mine.get("k") == 2 and other.get("k") == 2
