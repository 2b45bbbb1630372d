"""Password guessing: the 11th failed log-in within 15 minutes is refused, per account and per
address, even with the right password; successes don't count; the window passes."""

from __future__ import annotations

import sys
from datetime import timedelta

from sqlalchemy import func, select

from mapservice.db import utcnow
from mapservice.models import LoginAttempt
from tests.conftest import PASSWORD, login, reload


def test_eleventh_failure_is_refused_even_with_the_right_password(client, db, make):
    committee = make.committee(with_streets=False)
    make.admin(committee, username="target")
    for _ in range(10):
        assert login(client, "target", "wrong-password-xyz").status_code == 401
    refused = login(client, "target", PASSWORD)
    assert refused.status_code == 429
    assert "15" in refused.get_data(as_text=True) or "分钟" in refused.get_data(as_text=True)
    reload(db)
    assert (
        db.scalar(select(func.count(LoginAttempt.id))) == 10
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
    """50 guesses at one account from one address, the right password being the 30th: ten
    are answered "wrong", the other 40 refused untried, and nobody is logged in."""
    committee = make.committee(with_streets=False)
    make.admin(committee, username="guessed")
    guesses = [f"guess-number-{i:03d}" for i in range(50)]
    guesses[29] = PASSWORD
    answers = [login(client, "guessed", g).status_code for g in guesses]
    assert answers == [401] * 10 + [429] * 40
    assert client.get("/account/tokens").status_code in (302, 401)  # not logged in
    print(
        f"log-in guessing: {len(guesses)} tried, {answers.count(401)} answered wrong,"
        f" {answers.count(429)} refused untried, 0 logged in",
        file=sys.stderr,
    )
