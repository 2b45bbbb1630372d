"""Password guessing (issue 23, item 2): an address is refused after 10 failures within 15
minutes, or 5 on one account; an account is only slowed (at most a few seconds), never shut, so
no stranger can lock anyone out; successes don't count; the window passes; the run of failures
is in the audit log."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from mapservice.db import utcnow
from mapservice.models import AuditEntry, LoginAttempt
from mapservice.operations import throttle
from tests.conftest import PASSWORD, login, reload


@pytest.fixture(autouse=True)
def no_waiting(app: Any) -> None:
    """The growing delay is computed and checked (:func:`throttle.delay_for`), not slept."""
    app.config["LOGIN_DELAY_SCALE"] = 0.0


def login_from(client: Any, address: str, username: str, password: str) -> Any:
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_sixth_failure_from_one_address_is_refused_even_with_the_right_password(client, db, make):
    committee = make.committee(with_streets=False)
    make.admin(committee, username="target")
    for _ in range(5):
        assert login(client, "target", "wrong-password-xyz").status_code == 401
    refused = login(client, "target", PASSWORD)
    assert refused.status_code == 429
    assert "15" in refused.get_data(as_text=True) or "分钟" in refused.get_data(as_text=True)
    reload(db)
    assert (
        db.scalar(select(func.count(LoginAttempt.id))) == 5
    )  # refused attempts are not even tried
    # The window passes: age the failures by 16 minutes.
    for attempt in db.scalars(select(LoginAttempt)):
        attempt.at = attempt.at - timedelta(minutes=16)
    db.commit()
    assert login(client, "target", PASSWORD).status_code == 302


def test_per_address_limit_spans_accounts(client, db, make):
    committee = make.committee(with_streets=False)
    make.admin(committee, username="victim")
    for i in range(10):
        login(client, f"nobody{i}", "wrong-password-xyz")
    assert login(client, "victim", PASSWORD).status_code == 429
    # Another address is not affected.
    other = client.post(
        "/login",
        data={"username": "victim", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert other.status_code == 302


def test_successes_do_not_count(client, db, make):
    committee = make.committee(with_streets=False)
    make.admin(committee, username="regular")
    for _ in range(12):
        assert login(client, "regular").status_code == 302
        client.post("/logout")
    reload(db)
    assert (
        db.scalar(select(func.count(LoginAttempt.id)).where(LoginAttempt.success.is_(True))) == 12
    )
    assert (
        db.scalar(
            select(func.count(LoginAttempt.id)).where(
                LoginAttempt.at < utcnow() - timedelta(hours=1)
            )
        )
        == 0
    )


def test_a_guessing_run_never_reaches_the_right_password(client, db, make):
    """50 guesses at one account from one address, the right password being the 30th: five
    are answered "wrong", the other 45 refused untried, and nobody is logged in."""
    committee = make.committee(with_streets=False)
    make.admin(committee, username="guessed")
    guesses = [f"guess-number-{i:03d}" for i in range(50)]
    guesses[29] = PASSWORD
    answers = [login(client, "guessed", g).status_code for g in guesses]
    assert answers == [401] * 5 + [429] * 45
    assert client.get("/account/tokens").status_code in (302, 401)  # not logged in
    print(
        f"log-in guessing: {len(guesses)} tried, {answers.count(401)} answered wrong,"
        f" {answers.count(429)} refused untried, 0 logged in",
        file=sys.stderr,
    )


def test_ten_failures_from_ten_addresses_do_not_lock_the_owner_out(client, db, make):
    """The attack that locked an account for good: one wrong password from each of ten
    addresses, every quarter hour. The owner's right password from an eleventh address is
    let in (after a delay of at most a few seconds), and the admin sees the run in the log."""
    committee = make.committee(with_streets=False)
    owner = make.admin(committee, username="owner")
    for i in range(10):
        assert login_from(client, f"10.1.0.{i}", "owner", f"wrong-{i:02d}-pass").status_code == 401
    reload(db)
    assert throttle.account_failures(db, "owner", utcnow()) == 10
    assert 0 < throttle.delay_for(10) <= throttle.MAX_DELAY <= 3
    assert login_from(client, "10.1.0.99", "owner", PASSWORD).status_code == 302
    # The next quarter hour's ten: still let in.
    client.post("/logout")
    reload(db)
    for attempt in db.scalars(select(LoginAttempt)):
        attempt.at = attempt.at - timedelta(minutes=16)
    db.commit()
    for i in range(10):
        assert login_from(client, f"10.2.0.{i}", "owner", f"wrong-{i:02d}-pass").status_code == 401
    assert login_from(client, "10.1.0.99", "owner", PASSWORD).status_code == 302
    reload(db)
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.login_failures")).all()
    assert [(e.object_id, e.committee_id) for e in entries] == [(owner.id, committee.id)] * 2
    assert '"addresses": 5' in entries[0].details


def test_the_delay_grows_and_stops_at_its_cap():
    delays = [throttle.delay_for(n) for n in range(12)]
    assert delays[: throttle.SOFT_FROM] == [0.0] * throttle.SOFT_FROM
    assert delays[5:9] == [0.5, 1.0, 2.0, 3.0] and max(delays) == throttle.MAX_DELAY


@pytest.mark.parametrize("accounts", ["one account", "many accounts"])
def test_twenty_wrong_passwords_at_once_from_one_address_admit_no_more_than_the_limit(
    app, db, make, accounts
):
    """Twenty wrong passwords sent at the same moment from one address (20 threads, a client
    each, on the real database): the throttle's count and record are one step, so no more
    than the limit are tried — 5 on one account, 10 across accounts — and the rest refused."""
    import threading

    committee = make.committee(with_streets=False)
    make.admin(committee, username="racer")
    names = ["racer"] * 20 if accounts == "one account" else [f"racer{i}" for i in range(20)]
    limit = throttle.PAIR_MAX if accounts == "one account" else throttle.ADDRESS_MAX
    start = threading.Barrier(len(names))
    answers: list[int] = []

    def attempt(name: str) -> None:
        client = app.test_client()
        start.wait()
        answers.append(login_from(client, "198.51.100.7", name, "wrong-password-xyz").status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(answers) == {401: limit, 429: len(names) - limit}
    reload(db)
    assert db.scalar(select(func.count(LoginAttempt.id))) == limit
