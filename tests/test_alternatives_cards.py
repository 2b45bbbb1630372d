"""The venues a refusal proposes pass every rule at their venue, whether they are decided from
what the process keeps under the search epoch token (the catalogue, and each venue's card:
its rules, hours, closures, unit's name) or from the database alone; a change to a venue (its
rules, its name, the units paired with it) is seen by the next refusal."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mapservice.booking import alternatives, catalogue, engine
from mapservice.core.errors import BookingConflict
from mapservice.models import Closure, SearchEpoch, Venue

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=TZ)  # a Tuesday morning
START = datetime(2026, 12, 2, 19, 0, tzinfo=TZ)
END = datetime(2026, 12, 2, 20, 0, tzinfo=TZ)

# Each neighbour of the refused court, nearest first: what makes it (not) a proposal.
KINDS = [
    "public",  # proposed
    "taken",  # booked over the window by another group
    "members",  # the booker's unit is a member unit: proposed
    "paired",  # only for units paired with its own: not the booker's (until paired)
    "notice",  # asks for three days' notice
    "closure",  # closed over the window
    "evening",  # open 21:00-22:00 only
    "quota",  # one hour a week per group, already used by the booker's group
    "hidden",  # not published
    "members",  # proposed
    "public",  # proposed
    "public",  # proposed (the fifth)
    "public",  # beyond the five
]


def parties(make: Any) -> tuple[Any, ...]:
    """The venues' unit with its group and secretary, the booker's unit, group and booker."""
    committee = make.committee()
    owner = make.unit(committee, "移动公司")
    mine = make.unit(committee, "邮政公司")
    g_owner = make.group(committee, owner, "移动团支部")
    g_mine = make.group(committee, mine, "邮政团支部")
    sec = make.secretary(owner, username="sec")
    booker = make.booker(g_mine, username="booker")
    return owner, g_owner, sec, mine, g_mine, booker


@pytest.fixture
def world(make: Any, db: Any, wdb: Any) -> dict[str, Any]:
    owner, g_owner, sec, mine, g_mine, booker = parties(make)
    court = make.venue(owner, name="羽毛球馆", capacity_units=1, bookable_by="public")
    near: list[Venue] = []
    for i, kind in enumerate(KINDS):
        near.append(
            make.venue(
                owner,
                name=f"{kind}{i}",
                capacity_units=1,
                hours="Mon-Sun 21:00-22:00" if kind == "evening" else "Mon-Sun 08:00-22:00",
                bookable_by={"members": "members", "paired": "paired"}.get(kind, "public"),
                min_notice_minutes=3 * 24 * 60 if kind == "notice" else 60,
                weekly_quota_hours=1 if kind == "quota" else None,
                published=kind != "hidden",
                lon=court.lon - 0.0005 * (i + 1),
                lat=court.lat,
            )
        )
    db.add(
        Closure(
            venue_id=near[KINDS.index("closure")].id,
            start_at=START.replace(hour=18),
            end_at=END.replace(hour=21),
            reason="检修",
        )
    )
    db.commit()
    # The taken one, the quota used (Monday of the same week, an hour) and the refused court.
    engine.book(wdb, sec, near[KINDS.index("taken")].id, g_owner.id, START, END, now=NOW)
    quota = near[KINDS.index("quota")].id
    engine.book(wdb, booker, quota, g_mine.id, START.replace(hour=9), END.replace(hour=10), now=NOW)
    engine.book(wdb, sec, court.id, g_owner.id, START, END, now=NOW)
    wdb.commit()
    return {"court": court, "near": near, "booker": booker, "group": g_mine, "mine": mine}


def refused(wdb: Any, w: dict[str, Any]) -> Any:
    """The booker's refused request at the full court, its alternatives not yet computed."""
    with pytest.raises(BookingConflict) as info:
        engine.book(wdb, w["booker"], w["court"].id, w["group"].id, START, END, now=NOW)
    wdb.rollback()
    return info.value


def proposed(wdb: Any, w: dict[str, Any]) -> list[str]:
    conflict = refused(wdb, w)
    names = [v.name for v in conflict.resolve(wdb).venues]
    wdb.rollback()
    return names


def test_kept_and_read_answers_agree_and_pass_every_rule(wdb, world):
    conflict = refused(wdb, world)
    p = conflict.suggest.args[0]  # the prepared request the refusal carries
    found = catalogue.current(wdb)
    assert found is not None
    kept = alternatives._similar_kept(wdb, p, found, found.entries[p.venue_id], 5)
    read = alternatives._similar_read(wdb, p, 5)
    wdb.rollback()
    assert kept == read
    assert [v.name for v in kept] == ["public0", "members2", "members9", "public10", "public11"]
    assert [v.unit for v in kept] == ["移动公司"] * 5
    distances = [v.distance_m for v in kept]
    assert distances == sorted(distances) and distances[0] > 0
    assert proposed(wdb, world) == [v.name for v in kept]


def test_a_change_to_a_venue_is_seen_by_the_next_refusal(db, wdb, world):
    before = proposed(wdb, world)
    token = db.scalar(select(SearchEpoch.token))
    notice = db.get(Venue, world["near"][KINDS.index("notice")].id)
    public = db.get(Venue, world["near"][0].id)
    notice.min_notice_minutes = 60
    public.min_notice_minutes = 3 * 24 * 60
    public_name = public.name
    db.commit()
    assert db.scalar(select(SearchEpoch.token)) != token
    after = proposed(wdb, world)
    assert public_name in before and public_name not in after
    assert after[:2] == ["members2", "notice4"]


def test_a_venue_paired_with_the_bookers_unit_is_proposed_once_paired(db, wdb, world):
    paired = db.get(Venue, world["near"][KINDS.index("paired")].id)
    assert paired.name not in proposed(wdb, world)
    paired.paired_units.append(db.get(type(world["mine"]), world["mine"].id))
    db.commit()
    assert proposed(wdb, world)[:3] == ["public0", "members2", "paired3"]


def test_cards_are_read_once_per_token(db, wdb, world):
    alternatives._CARDS.clear()
    proposed(wdb, world)
    ((token, cards),) = alternatives._CARDS.values()
    first = dict(cards)
    proposed(wdb, world)
    ((again, cards),) = alternatives._CARDS.values()
    assert again == token and all(cards[k] is first[k] for k in first)
    db.get(Venue, world["near"][0].id).name = "改名球馆"
    db.commit()
    assert proposed(wdb, world)[0] == "改名球馆"
    ((newer, _cards),) = alternatives._CARDS.values()
    assert newer != token


@pytest.fixture
def evenings(make: Any, wdb: Any) -> dict[str, Any]:
    """A one-court venue open 18:00-22:00, its Wednesday evening (2 Dec) all taken."""
    owner, g_owner, sec, _mine, g_mine, booker = parties(make)
    court = make.venue(
        owner, name="夜场", capacity_units=1, hours="Mon-Sun 18:00-22:00", bookable_by="public"
    )
    for hour in (18, 19, 20, 21):
        engine.book(wdb, sec, court.id, g_owner.id, at(2, hour), at(2, hour + 1), now=NOW)
    wdb.commit()
    return {"court": court, "booker": booker, "group": g_mine, "sec": sec, "g_owner": g_owner}


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, 0, tzinfo=TZ)


def test_a_full_day_sends_the_windows_to_the_next_days(wdb, evenings):
    """The request's own day is read first; with no window there the next days are read,
    their bookings counted, and the nearest five free windows come in order."""
    e = evenings
    engine.book(wdb, e["sec"], e["court"].id, e["g_owner"].id, at(3, 19), at(3, 20), now=NOW)
    wdb.commit()
    with pytest.raises(BookingConflict) as info:
        engine.book(wdb, e["booker"], e["court"].id, e["group"].id, at(2, 19), at(2, 20), now=NOW)
    wdb.rollback()
    windows = info.value.resolve(wdb).windows
    wdb.rollback()
    assert windows == [(at(3, h), at(3, h + 1)) for h in (18, 20, 21)] + [
        (at(4, 18), at(4, 19)),
        (at(4, 19), at(4, 20)),
    ]


def test_a_moved_bookings_own_place_on_a_later_day_is_not_proposed(wdb, evenings):
    """Moving Thursday's booking onto the full Wednesday is refused; its own units do not
    count against it, yet where it is now (Thursday 19:00, read with the later days) is no
    proposal."""
    e = evenings
    mine = engine.book(
        wdb, e["booker"], e["court"].id, e["group"].id, at(3, 19), at(3, 20), now=NOW
    )
    wdb.commit()
    with pytest.raises(BookingConflict) as info:
        engine.reschedule(wdb, e["booker"], mine.id, at(2, 19), at(2, 20), now=NOW)
    wdb.rollback()
    windows = info.value.resolve(wdb).windows
    wdb.rollback()
    assert (at(3, 19), at(3, 20)) not in windows
    assert windows == [(at(3, h), at(3, h + 1)) for h in (18, 20, 21)] + [
        (at(4, 18), at(4, 19)),
        (at(4, 19), at(4, 20)),
    ]
