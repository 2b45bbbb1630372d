"""The venues a refusal proposes are ranked from the kept venue catalogue: the same nearest
venues, in the same order, as ranked from SQL, and a change to a venue shows at once."""

from __future__ import annotations

import random

import pytest

from mapservice.booking import alternatives
from mapservice.booking.alternatives import _nearest_in_sql, nearest_candidates


@pytest.fixture
def courts(db, make):
    committee = make.committee()
    other_committee = make.committee("jianhua", with_streets=False)
    units = [make.unit(committee) for _ in range(3)]
    elsewhere = make.unit(other_committee)
    rnd = random.Random(5)
    venues = []
    for k in range(30):
        venues.append(
            make.venue(
                units[k % 3],
                name=f"球馆{k}",
                type="badminton",
                capacity_units=rnd.choice((1, 2, 3)),
                hours="Mon-Sun 08:00-22:00",
                lon=119.425 + rnd.uniform(-0.02, 0.02),
                lat=32.195 + rnd.uniform(-0.015, 0.015),
                published=k % 7 != 3,  # some not public: never proposed
            )
        )
    for k in range(3):  # other types and another committee's courts: never proposed
        make.venue(units[0], name=f"会议室{k}", type="meeting_room", lon=119.43, lat=32.20)
        make.venue(elsewhere, name=f"外区球馆{k}", type="badminton", lon=119.43, lat=32.20)
    return venues


def test_the_catalogue_ranks_as_sql_does_and_follows_changes(db, courts):
    for venue in courts[:8]:
        for units in (1, 2, 3):
            for limit in (5, 40):
                kept = nearest_candidates(db, venue.id, units, limit=limit)
                sql = _nearest_in_sql(db, venue.id, units, limit=limit)
                assert kept == sql
                assert all(n.capacity_units >= units for n in kept[1])
                assert venue.id not in [n.id for n in kept[1]]
    first = nearest_candidates(db, courts[0].id, 1, limit=3)[1][0]
    assert first.id in {v.id for v in courts}
    hidden = db.get(type(courts[0]), first.id)
    hidden.published = False
    db.commit()
    after = nearest_candidates(db, courts[0].id, 1, limit=3)[1]
    assert first.id not in [n.id for n in after]
    assert after == _nearest_in_sql(db, courts[0].id, 1, limit=3)[1]


def test_a_pool_is_built_once_per_catalogue_token(db, courts):
    """The type's venues are turned into arrays once per catalogue token (not per refusal),
    and again after a change to venues."""
    alternatives._POOLS.clear()
    for venue in courts[:5]:
        nearest_candidates(db, venue.id, 1)
    assert len(alternatives._POOLS) == 1
    courts[1].published = False
    db.commit()
    nearest_candidates(db, courts[0].id, 1)
    assert len(alternatives._POOLS) == 2
    assert courts[1].id not in [n.id for n in nearest_candidates(db, courts[0].id, 1)[1]]


def test_a_transactions_own_change_to_a_venue_shows_in_its_nearest(db, courts):
    """Inside the transaction that unpublishes a venue (not yet committed), a refusal's
    nearest venues already leave it out: PostgreSQL reads them from SQL (its token is not
    trusted in a transaction that changed venues), SQLite from a catalogue read again."""
    first = nearest_candidates(db, courts[0].id, 1, limit=3)[1][0]
    venue = db.get(type(courts[0]), first.id)
    venue.published = False
    db.flush()
    if db.get_bind().dialect.name == "postgresql":  # the SQL path is the one taken
        assert alternatives.catalogue.current(db) is None
    inside = nearest_candidates(db, courts[0].id, 1, limit=3)[1]
    assert first.id not in [n.id for n in inside]
    assert inside == _nearest_in_sql(db, courts[0].id, 1, limit=3)[1]
    db.rollback()
    assert nearest_candidates(db, courts[0].id, 1, limit=3)[1][0] == first
