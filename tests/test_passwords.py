"""Passwords are kept as argon2id hashes at OWASP's recommended configuration (19 MiB, two
passes, one lane: :data:`mapservice.operations.users.HASH_PARAMETERS`); a hash made with
other parameters — argon2-cffi's default of 64 MiB, which every log-in allocated in its
worker — still lets its owner in, and is made again with ours at that log-in."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select

from mapservice.models import User
from mapservice.operations import users
from tests.conftest import PASSWORD, login

OURS = "m=19456,t=2,p=1"


def stored_hash(db: Any, user_id: int) -> str:
    db.rollback()
    return db.scalar(select(User.password_hash).where(User.id == user_id))


def test_an_older_hash_lets_its_owner_in_and_is_made_again_with_ours(
    app, client, db, make, monkeypatch
):
    # The suite's users get cheap hashes (conftest); here the server's own hasher.
    monkeypatch.setattr(users, "_hasher", PasswordHasher(**users.HASH_PARAMETERS))
    committee = make.committee()
    user = make.user(committee, username="老管理员")
    old = PasswordHasher().hash(PASSWORD)  # argon2-cffi's default: 64 MiB, 3 passes, 4 lanes
    assert "m=65536,t=3,p=4" in old
    user.password_hash = old
    db.commit()
    user_id = user.id

    refused = login(client, "老管理员", PASSWORD + "x")
    assert refused.status_code == 401
    assert stored_hash(db, user_id) == old  # a wrong password changes nothing

    answer = login(client, "老管理员", PASSWORD)
    assert answer.status_code == 302 and "/login" not in answer.headers["Location"]
    new = stored_hash(db, user_id)
    assert new != old and f"$argon2id$v=19${OURS}$" in new
    assert users.verify_password(db.get(User, user_id), PASSWORD)
    client.post("/logout")
    again = login(client, "老管理员", PASSWORD)
    assert again.status_code == 302
    assert stored_hash(db, user_id) == new  # ours already: not made again


def test_new_passwords_are_hashed_with_ours(db, make, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(**users.HASH_PARAMETERS))
    committee = make.committee()
    user = make.user(committee, username="新用户")
    assert f"$argon2id$v=19${OURS}$" in stored_hash(db, user.id)
