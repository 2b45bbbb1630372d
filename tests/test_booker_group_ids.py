"""Whom a booker may book for, when the booker was loaded as the API's token check loads it
(its groups not loaded): the venue query under the lock reads the group ids with the venue
(``rows.venue_and_group``), and nothing else queries them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import lazyload

from mapservice.booking import engine
from mapservice.core.errors import NotAllowed
from mapservice.models import User

TZ = ZoneInfo("Asia/Shanghai")
START = (datetime.now(TZ) + timedelta(days=3)).replace(hour=19, minute=0, second=0, microsecond=0)
END = START + timedelta(hours=1)

ACTOR = select(User).where(User.id == bindparam("user_id")).options(lazyload(User.groups))


@pytest.fixture
def parties(make: Any) -> dict[str, Any]:
    committee = make.committee()
    owner = make.unit(committee, "移动公司")
    mine = make.unit(committee, "邮政公司")
    other = make.unit(committee, "华电公司")
    g_mine = make.group(committee, mine, "邮政团支部")
    g_other = make.group(committee, other, "华电团支部")
    booker = make.booker(g_mine, username="booker")
    venue = make.venue(owner, name="乒乓球室", capacity_units=2, bookable_by="public")
    return {"booker": booker, "mine": g_mine, "other": g_other, "venue": venue}


def statements(wdb: Any) -> list[str]:
    seen: list[str] = []
    event.listen(wdb.get_bind(), "before_cursor_execute", lambda *a: seen.append(a[2]), named=False)
    return seen


def test_a_booker_books_for_its_own_group_without_a_query_for_its_groups(wdb, parties):
    actor = wdb.execute(ACTOR, {"user_id": parties["booker"].id}).scalar_one()
    assert not actor.knows_group_ids
    seen = statements(wdb)
    booking = engine.book(wdb, actor, parties["venue"].id, parties["mine"].id, START, END, units=1)
    wdb.commit()
    assert booking.group_id == parties["mine"].id
    assert actor.knows_group_ids and actor.group_ids == {parties["mine"].id}
    assert not [s for s in seen if "JOIN user_groups" in s]  # the groups never read alone


def test_a_booker_may_not_book_for_another_group(wdb, parties):
    actor = wdb.execute(ACTOR, {"user_id": parties["booker"].id}).scalar_one()
    with pytest.raises(NotAllowed) as info:
        engine.book(wdb, actor, parties["venue"].id, parties["other"].id, START, END, units=1)
    wdb.rollback()
    assert info.value.code == "not_your_group"


def test_loaded_groups_win_over_what_a_query_told(wdb, parties):
    actor = wdb.execute(ACTOR, {"user_id": parties["booker"].id}).scalar_one()
    actor.know_group_ids(frozenset({parties["other"].id}))
    assert actor.group_ids == {parties["other"].id}
    actor.groups  # noqa: B018 - loads them
    assert actor.group_ids == {parties["mine"].id}
