"""The booking engine: rules with their messages, capacity by unit, conflicts with
alternatives, approval and expiry, series, cancel, reschedule, check-in, proxy booking, audit."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect, select

from mapservice.booking import engine
from mapservice.booking.availability import free_venue_ids, week_slots
from mapservice.core.errors import BookingConflict, NotAllowed, NotFound, RuleViolation
from mapservice.core.i18n import use_locale
from mapservice.models import (
    AuditEntry,
    Booking,
    BookingAllocation,
    Closure,
    Notification,
    Unit,
    Venue,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=TZ)  # a Tuesday morning


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time on 2026-12-(day)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ)


def _request(venue_id: int, group_id: int, day: int, start: int, end: int) -> engine.BookingRequest:
    """One unit of the venue for the group on 2026-12-(day), from hour ``start`` to ``end``."""
    return engine.BookingRequest(venue_id, group_id, at(day, start), at(day, end))


@pytest.fixture
def w(make: Any, wdb: Any) -> dict[str, Any]:
    committee = make.committee()
    owner = make.unit(committee, "移动公司")
    other = make.unit(committee, "邮政公司")
    third = make.unit(committee, "华电公司")
    g_owner = make.group(committee, owner, "移动团支部")
    g_other = make.group(committee, other, "邮政团支部")
    g_third = make.group(committee, third, "华电团支部")
    g_free = make.group(committee, None, "志愿者协会")
    users = {
        "admin": make.admin(committee, username="admin"),
        "sec": make.secretary(owner, username="sec"),
        "sec_other": make.secretary(other, username="sec-other"),
        "booker": make.booker(g_other, username="booker"),
        "booker_third": make.booker(g_third, username="booker-third"),
        "booker_free": make.booker(g_free, username="booker-free"),
    }
    court = make.venue(
        owner,
        name="羽毛球馆",
        capacity_units=3,
        max_headcount=20,
        hours="Mon-Sun 08:00-22:00",
        slot_minutes=60,
        min_duration_minutes=60,
        max_duration_minutes=180,
        weekly_quota_hours=4,
        max_days_ahead=30,
        min_notice_minutes=120,
    )
    court2 = make.venue(
        other,
        name="邮政羽毛球馆",
        capacity_units=2,
        hours="Mon-Sun 08:00-22:00",
        lon=119.43,
        lat=32.20,
    )
    hall = make.venue(
        owner,
        name="报告厅",
        type="lecture_hall",
        requires_approval=True,
        hours="Mon-Fri 09:00-17:00",
        slot_minutes=30,
        min_duration_minutes=30,
        max_duration_minutes=240,
    )
    wdb.commit()
    # Load objects in the writer session the engine uses.
    objs = {k: wdb.merge(v) for k, v in users.items()}
    objs.update(
        court=wdb.get(Venue, court.id),
        court2=wdb.get(Venue, court2.id),
        hall=wdb.get(Venue, hall.id),
        g_owner=g_owner,
        g_other=g_other,
        g_third=g_third,
        g_free=g_free,
        committee=committee,
    )
    wdb.rollback()
    return objs


def book(wdb, w, who="booker", venue="court", group="g_other", start=None, end=None, **kw):
    b = engine.book(
        wdb,
        w[who],
        w[venue].id,
        w[group].id,
        start or at(2, 19),
        end or at(2, 20),
        now=kw.pop("now", NOW),
        **kw,
    )
    wdb.commit()
    return b


def test_book_assigns_a_court_and_records_it(wdb, w):
    b = book(wdb, w)
    assert b.status == "confirmed" and b.unit_numbers == [1]
    b2 = book(wdb, w, units=2)
    assert b2.unit_numbers == [2, 3]
    entry = wdb.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "booking.create", AuditEntry.object_id == b.id
        )
    ).one()
    assert entry.actor_name == "booker"


def test_capacity_is_never_exceeded_and_back_to_back_is_fine(wdb, w):
    for _ in range(3):
        book(wdb, w, who="booker_third", group="g_third")
    with pytest.raises(BookingConflict) as info:
        book(wdb, w)
    conflict = info.value
    assert [c.units for c in conflict.conflicts] == [1, 1, 1]
    assert all(
        c.group is None and c.booking_id is None for c in conflict.conflicts
    )  # outsiders: only "occupied"
    # Half-open intervals: 20:00-21:00 touches 19:00-20:00 and is free.
    assert book(wdb, w, start=at(2, 20), end=at(2, 21)).unit_numbers == [1]


def test_conflict_proposes_nearest_windows_and_venues(wdb, w):
    for _ in range(3):
        book(wdb, w)
    with pytest.raises(BookingConflict) as info:
        book(wdb, w)
    alts = info.value.resolve(wdb)  # the caller asks for them, the engine never does
    # Same day first, nearest in time: 18:00 and 20:00 before 17:00 and 21:00.
    assert alts.windows[:4] == [
        (at(2, 18), at(2, 19)),
        (at(2, 20), at(2, 21)),
        (at(2, 17), at(2, 18)),
        (at(2, 21), at(2, 22)),
    ]
    assert [v.name for v in alts.venues] == ["邮政羽毛球馆"]
    assert alts.venues[0].distance_m > 0


def test_owner_sees_who_holds_the_conflicting_slots(wdb, w):
    for _ in range(3):
        book(wdb, w, who="booker_third", group="g_third")
    with pytest.raises(BookingConflict) as info:
        book(wdb, w, who="sec", group="g_owner")
    assert {c.group for c in info.value.conflicts} == {"华电团支部"}


def test_a_booker_sees_its_own_groups_holds_by_name_and_others_only_as_occupied(wdb, w):
    own = book(wdb, w)
    book(wdb, w, who="booker_third", group="g_third", units=2)
    with pytest.raises(BookingConflict) as info:
        book(wdb, w)
    assert sorted((c.units, c.group, c.booking_id) for c in info.value.conflicts) == sorted(
        [(1, "邮政团支部", own.id), (2, None, None)]
    )


RULE_CASES = [
    # (description, overrides, code, Chinese fragment, English fragment)
    (
        "misaligned",
        {"start": at(2, 19, 30), "end": at(2, 20, 30)},
        "misaligned",
        "60",
        "60-minute",
    ),
    ("too short", {"start": at(2, 19), "end": at(2, 19, 30)}, "misaligned", "60", "60"),
    ("too long", {"start": at(2, 14), "end": at(2, 18)}, "too_long", "180", "180"),
    (
        "outside hours",
        {"start": at(2, 21), "end": at(2, 23)},
        "outside_hours",
        "08:00-22:00",
        "08:00-22:00",
    ),
    ("in the past", {"start": at(1, 6), "end": at(1, 7)}, "in_past", "", "past"),
    ("notice", {"start": at(1, 9), "end": at(1, 10)}, "notice", "120", "120"),
    (
        "too far ahead",
        {"start": at(31, 19) + timedelta(days=5), "end": at(31, 20) + timedelta(days=5)},
        "too_far_ahead",
        "30",
        "30",
    ),
    ("headcount", {"headcount": 25}, "headcount", "20", "20"),
    ("units", {"units": 4}, "units", "3", "3"),
    ("end before start", {"start": at(2, 20), "end": at(2, 19)}, "end_before_start", "", "after"),
]


@pytest.mark.parametrize(
    "desc, overrides, code, zh, en", RULE_CASES, ids=[c[0] for c in RULE_CASES]
)
def test_rule_table(wdb, w, desc, overrides, code, zh, en):
    messages = {}
    for locale, fragment in (("zh_CN", zh), ("en", en)):
        with use_locale(locale), pytest.raises(RuleViolation) as info:
            book(wdb, w, **overrides)
        wdb.rollback()
        codes = [v.code for v in info.value.violations]
        assert code in codes
        messages[locale] = next(v.message for v in info.value.violations if v.code == code)
        assert fragment in messages[locale]
    assert messages["zh_CN"] != messages["en"]  # translated
    assert wdb.scalar(select(Booking.id)) is None  # nothing written


def test_too_short_is_its_own_rule(wdb, w):
    w["court"].slot_minutes = 30
    w["court"].min_duration_minutes = 60
    wdb.commit()
    with pytest.raises(RuleViolation) as info:
        book(wdb, w, start=at(2, 19), end=at(2, 19, 30))
    assert [v.code for v in info.value.violations] == ["too_short"]


def test_closure_rule_names_the_closure(wdb, w):
    w["court"].closures.append(Closure(start_at=at(2, 0), end_at=at(3, 0), reason="设备检修"))
    wdb.commit()
    with pytest.raises(RuleViolation) as info, use_locale("en"):
        book(wdb, w)
    assert info.value.violations[0].code == "closed"
    assert "设备检修" in info.value.violations[0].message


def test_closures_are_read_to_the_second_in_the_venues_time_zone(wdb, w):
    """The closures come with the venue's row (as JSON text on both databases): one ending at
    19:00 local does not touch 19:00–20:00, one starting at 20:00 neither; one second into
    the hour does."""
    w["court"].closures.append(Closure(start_at=at(2, 17), end_at=at(2, 19), reason="检修"))
    w["court"].closures.append(Closure(start_at=at(2, 20), end_at=at(2, 21), reason="比赛"))
    wdb.commit()
    assert book(wdb, w, start=at(2, 19), end=at(2, 20)).status == "confirmed"
    w["court"].closures.append(
        Closure(start_at=at(3, 19) + timedelta(seconds=1), end_at=at(3, 19, 30), reason="消杀")
    )
    wdb.commit()
    with pytest.raises(RuleViolation) as info:
        book(wdb, w, start=at(3, 19), end=at(3, 20))
    assert [v.code for v in info.value.violations] == ["closed"]
    assert "消杀" in info.value.violations[0].message


def test_weekly_quota(wdb, w):
    book(wdb, w, start=at(2, 9), end=at(2, 12))  # 3 h this week (Mon 30 Nov – Sun 6 Dec)
    with pytest.raises(RuleViolation) as info:
        book(wdb, w, start=at(3, 9), end=at(3, 11))
    assert info.value.violations[0].code == "quota"
    book(wdb, w, start=at(3, 9), end=at(3, 10))  # exactly 4 h: allowed
    book(wdb, w, start=at(7, 9), end=at(7, 12))  # next week starts Monday 7 Dec


@pytest.mark.parametrize(
    "bookable_by, who, group, allowed",
    [
        ("members", "booker", "g_other", True),
        ("members", "booker_free", "g_free", False),  # standalone group is not a member unit
        ("paired", "booker", "g_other", True),
        ("paired", "booker_third", "g_third", False),
        ("public", "booker_free", "g_free", True),
    ],
)
def test_who_may_book(wdb, w, bookable_by, who, group, allowed):
    w["court"].bookable_by = bookable_by
    if bookable_by == "paired":
        w["court"].paired_units = [wdb.get(Unit, w["g_other"].unit_id)]
    wdb.commit()
    if allowed:
        assert book(wdb, w, who=who, group=group).status == "confirmed"
    else:
        with pytest.raises(RuleViolation) as info:
            book(wdb, w, who=who, group=group)
        assert info.value.violations[0].code == "not_allowed"


def test_units_paired_with_the_venues_unit_may_book_on_the_pairings_days(wdb, w):
    """结对挂钩: a unit paired (either way round) with the venue's unit counts as paired while
    the pairing runs, beside the venue's own list; the policy's loaded-object check agrees."""
    from datetime import date

    from mapservice.models import Group, Pairing
    from mapservice.policy import can_group_book_venue

    owner, third = w["court"].unit_id, w["g_third"].unit_id
    w["court"].bookable_by = "paired"
    wdb.add(
        Pairing(
            committee_id=w["court"].committee_id,
            unit_id=owner,
            partner_unit_id=third,
            start_on=date(2026, 12, 2),
            end_on=date(2026, 12, 3),
        )
    )
    wdb.commit()
    assert book(wdb, w, who="booker_third", group="g_third").status == "confirmed"  # 2 Dec
    g_third = wdb.get(Group, w["g_third"].id)
    assert can_group_book_venue(g_third, wdb.get(Venue, w["court"].id), date(2026, 12, 3))
    assert not can_group_book_venue(g_third, wdb.get(Venue, w["court"].id), date(2026, 12, 4))
    wdb.rollback()
    for day in (1, 4):  # before the pairing starts, after it ended
        with pytest.raises(RuleViolation) as info:
            book(wdb, w, who="booker_third", group="g_third", start=at(day, 19), end=at(day, 20))
        assert info.value.violations[0].code == "not_allowed"
        wdb.rollback()
    # the venue's own list keeps working for a unit that is not paired
    with pytest.raises(RuleViolation):
        book(wdb, w, who="booker", group="g_other", start=at(4, 19), end=at(4, 20))
    wdb.rollback()
    wdb.get(Venue, w["court"].id).paired_units = [wdb.get(Unit, w["g_other"].unit_id)]
    wdb.commit()
    assert book(wdb, w, start=at(4, 19), end=at(4, 20)).status == "confirmed"


def test_booker_only_for_own_group_and_secretary_proxies(wdb, w):
    with pytest.raises(NotAllowed):
        book(wdb, w, who="booker", group="g_third")
    wdb.rollback()
    proxy = book(wdb, w, who="sec", group="g_third")  # "一个电话": the owner books for a caller
    assert proxy.entered_by_id == w["sec"].id and proxy.group_id == w["g_third"].id
    with pytest.raises(NotAllowed):  # another unit's secretary may not book for a foreign group
        book(wdb, w, who="sec_other", group="g_third")


def test_suspended_unit_and_retired_venue(wdb, w):
    wdb.get(Unit, w["g_other"].unit_id).status = "suspended"
    wdb.commit()
    with pytest.raises(RuleViolation) as info:
        book(wdb, w)
    assert info.value.violations[0].code == "group_inactive"
    wdb.rollback()
    w["court"].retired = True
    wdb.commit()
    with pytest.raises(NotFound):  # retired venues are out of sight for bookers
        book(wdb, w, who="booker_third", group="g_third")


def test_who_sees_an_unpublished_venue_whatever_was_asked_before(wdb, w, make):
    """prepare() keeps one statement per shape of the visibility rule: asked in turn by the
    owner's admin, a booker, another committee's admin and the owner's secretary, the same
    unpublished venue is seen (and refused as not open) by staff of its committee only, and
    is no venue at all to the others, each time; published again, the booker books it."""
    other = make.committee("dantu")
    g_away = make.group(other, make.unit(other, "外单位"), "外单位团支部")
    away_admin = wdb.merge(make.admin(other, username="away-admin"))
    wdb.commit()
    w["court"].published = False
    wdb.commit()
    seen = []
    for day, who, group in [
        (2, w["admin"], w["g_other"]),
        (2, w["booker"], w["g_other"]),
        (3, away_admin, g_away),
        (3, w["sec"], w["g_owner"]),
        (4, w["booker"], w["g_other"]),
    ]:
        try:
            engine.book(wdb, who, w["court"].id, group.id, at(day, 19), at(day, 20), now=NOW)
            wdb.commit()
            seen.append("booked")
        except NotFound as exc:
            wdb.rollback()
            seen.append(exc.code)
        except RuleViolation as exc:
            wdb.rollback()
            seen.append(exc.violations[0].code)
    assert seen == [
        "venue_inactive",
        "venue_not_found",
        "venue_not_found",
        "venue_inactive",
        "venue_not_found",
    ]
    w["court"].published = True
    wdb.commit()
    assert book(wdb, w, start=at(4, 19), end=at(4, 20)).status == "confirmed"


def test_approval_hold_confirm_decline_and_expiry(wdb, w):
    req = book(wdb, w, venue="hall", start=at(2, 10), end=at(2, 11))
    assert req.status == "pending" and req.hold_expires_at == NOW + timedelta(hours=48)
    with pytest.raises(BookingConflict):  # the pending request holds the slot
        book(
            wdb,
            w,
            who="booker_third",
            group="g_third",
            venue="hall",
            start=at(2, 10),
            end=at(2, 11),
        )
    wdb.rollback()
    with pytest.raises(NotAllowed):
        engine.confirm(wdb, w["booker"], req.id, now=NOW)
    wdb.rollback()
    engine.confirm(wdb, w["sec"], req.id, now=NOW)
    wdb.commit()
    assert req.status == "confirmed"
    second = book(wdb, w, venue="hall", start=at(3, 10), end=at(3, 11))
    with pytest.raises(RuleViolation):
        engine.decline(wdb, w["sec"], second.id, "  ", now=NOW)
    wdb.rollback()
    engine.decline(wdb, w["sec"], second.id, "场地另有安排", now=NOW)
    wdb.commit()
    assert second.status == "declined" and second.unit_numbers == []
    third = book(wdb, w, venue="hall", start=at(4, 10), end=at(4, 11))
    later = NOW + timedelta(hours=49)
    # After the hold ran out the slot is free again; the expiry runs on access.
    again = book(
        wdb,
        w,
        who="booker_third",
        group="g_third",
        venue="hall",
        start=at(4, 10),
        end=at(4, 11),
        now=later,
    )
    wdb.refresh(third)
    assert third.status == "declined" and third.status_reason == "expired"
    assert again.status == "pending"
    notes = list(wdb.scalars(select(Notification).order_by(Notification.id)))
    assert [n.kind for n in notes if n.group_id] == ["confirmed", "declined", "expired"]
    # Each new request (three here, and the one made after the expiry) told the venue's unit.
    hall_unit = w["hall"].unit_id
    assert [n.unit_id for n in notes if n.kind == "new_request"] == [hall_unit] * 4


def test_owner_proxy_booking_is_confirmed_without_approval(wdb, w):
    b = book(wdb, w, who="sec", group="g_third", venue="hall", start=at(2, 10), end=at(2, 11))
    assert b.status == "confirmed"


def test_proposed_venues_are_the_nearest_free_ones_the_group_may_book(make, db, wdb, w):
    """Of the nearest venues of the type, those taken, closed or not open to the group are
    skipped; the rest come nearest first, at most five."""
    unit_id, lon, lat = w["court2"].unit_id, w["court"].lon, w["court"].lat
    wdb.rollback()  # reading those began a writer transaction (SQLite: the write lock)
    unit = db.get(Unit, unit_id)
    made = {}
    for i, kind in enumerate(["taken", "free", "closed", "members", "free", "free", "free"]):
        made[i] = make.venue(
            unit,
            name=f"{kind}{i}",
            capacity_units=1,
            hours="Mon-Sun 21:00-22:00" if kind == "closed" else "Mon-Sun 08:00-22:00",
            bookable_by="paired" if kind == "members" else "public",
            lon=lon - 0.0005 * (i + 1),  # nearer than 邮政羽毛球馆, in this order
            lat=lat,
        )
    db.commit()
    engine.book(wdb, w["sec_other"], made[0].id, w["g_other"].id, at(2, 19), at(2, 20), now=NOW)
    wdb.commit()
    for _ in range(3):
        book(wdb, w, who="sec", group="g_owner")
    with pytest.raises(BookingConflict) as info:
        book(wdb, w, who="booker_third", group="g_third")
    names = [v.name for v in info.value.resolve(wdb).venues]
    assert names == ["free1", "free4", "free5", "free6", "邮政羽毛球馆"], names
    distances = [v.distance_m for v in info.value.alternatives.venues]
    assert distances == sorted(distances)


def test_series_all_or_nothing_and_skip(wdb, w):
    book(wdb, w, start=at(16, 19), end=at(16, 20), units=3)  # the 3rd Wednesday is full
    with pytest.raises(engine.SeriesRejected) as info:
        engine.book_series(
            wdb,
            w["booker"],
            w["court"].id,
            w["g_other"].id,
            at(2, 19),
            at(2, 20),
            freq="weekly",
            count=4,
            now=NOW,
        )
    wdb.rollback()
    outcomes = info.value.outcomes
    assert [o.start.day for o in outcomes] == [2, 9, 16, 23]
    assert [o.error is None for o in outcomes] == [True, True, False, True]
    assert wdb.scalars(select(Booking).where(Booking.series_id.is_not(None))).all() == []
    result = engine.book_series(
        wdb,
        w["booker"],
        w["court"].id,
        w["g_other"].id,
        at(2, 19),
        at(2, 20),
        freq="weekly",
        count=4,
        policy="skip_conflicts",
        now=NOW,
    )
    wdb.commit()
    assert [b.start_at.astimezone(TZ).day for b in result.booked] == [2, 9, 23]
    assert isinstance(result.outcomes[2].error, BookingConflict)
    # Cancel this and the following: 9 and 23 go, 2 stays.
    engine.cancel(wdb, w["booker"], result.booked[1].id, scope="following", now=NOW)
    wdb.commit()
    statuses = [
        b.status
        for b in wdb.scalars(
            select(Booking).where(Booking.series_id == result.series_id).order_by(Booking.start_at)
        )
    ]
    assert statuses == ["confirmed", "cancelled", "cancelled"]
    engine.cancel(wdb, w["booker"], result.booked[0].id, scope="series", now=NOW)
    wdb.commit()
    assert (
        wdb.scalar(
            select(BookingAllocation.id).where(
                BookingAllocation.booking_id.in_([b.id for b in result.booked])
            )
        )
        is None
    )


def test_a_rejected_series_leaves_no_booking_behind_in_the_session(wdb, w):
    """The series' savepoint is rolled back; the same transaction then books on and commits:
    every booking the session still holds is a stored row (on PostgreSQL the booking is
    written with one Core statement and joins the session as the row it is)."""
    book(wdb, w, start=at(16, 19), end=at(16, 20), units=3)  # the 3rd Wednesday is full
    with pytest.raises(engine.SeriesRejected):
        engine.book_series(
            wdb,
            w["booker"],
            w["court"].id,
            w["g_other"].id,
            at(2, 19),
            at(2, 20),
            freq="weekly",
            count=4,
            now=NOW,
        )
    again = engine.book(
        wdb, w["booker"], w["court"].id, w["g_other"].id, at(2, 19), at(2, 20), now=NOW
    )
    wdb.commit()
    stored = set(wdb.scalars(select(Booking.id)))
    held = {
        inspect(o).identity[0] for o in list(wdb.identity_map.values()) if isinstance(o, Booking)
    }
    assert again.id in stored and held <= stored, held - stored
    assert again.unit_numbers == [1] and again.status == "confirmed"
    assert len(stored) == 2


def test_series_keeps_wall_clock_across_dst():
    london = ZoneInfo("Europe/London")
    start = datetime(2025, 3, 23, 19, 0, tzinfo=london)
    occ = engine.occurrences(start, start + timedelta(hours=1), london, "weekly", count=3)
    assert [(s.astimezone(london).hour, s.utcoffset()) for s, _e, _ok in occ] == [
        (19, timedelta(0)),
        (19, timedelta(hours=1)),
        (19, timedelta(hours=1)),
    ]
    skipped = engine.occurrences(
        datetime(2025, 3, 29, 1, 30, tzinfo=london),
        datetime(2025, 3, 29, 2, 30, tzinfo=london),
        london,
        "daily",
        count=2,
    )
    assert [ok for _s, _e, ok in skipped] == [True, False]


def test_cancel_cutoff_and_owner_override(wdb, w):
    b = book(wdb, w, start=at(1, 11), end=at(1, 12))
    with pytest.raises(RuleViolation) as info:
        engine.cancel(wdb, w["booker"], b.id, now=at(1, 10))
    assert info.value.violations[0].code == "cancel_cutoff"
    wdb.rollback()
    engine.cancel(wdb, w["sec"], b.id, reason="临时检修", now=at(1, 10))
    wdb.commit()
    assert b.status == "cancelled"
    assert wdb.scalars(select(Notification.kind)).all() == ["cancelled_by_owner"]
    with pytest.raises(NotFound):  # another group's booker cannot even see it
        engine.cancel(wdb, w["booker_third"], b.id, now=NOW)


def test_reschedule_is_atomic(wdb, w):
    mine = book(wdb, w)
    for _ in range(3):
        book(wdb, w, start=at(2, 20), end=at(2, 21), who="sec", group="g_owner")
    with pytest.raises(BookingConflict):
        engine.reschedule(wdb, w["booker"], mine.id, at(2, 20), at(2, 21), now=NOW)
    wdb.rollback()
    wdb.refresh(mine)
    assert (mine.start_at, mine.unit_numbers) == (at(2, 19), [1])  # old slot kept
    engine.reschedule(
        wdb, w["booker"], mine.id, at(2, 18), at(2, 20), now=NOW
    )  # overlaps itself: fine
    wdb.commit()
    wdb.refresh(mine)
    assert (mine.start_at, mine.end_at, mine.unit_numbers) == (at(2, 18), at(2, 20), [1])


def test_check_in_and_no_show(wdb, w):
    b = book(wdb, w)
    with pytest.raises(RuleViolation):
        engine.check_in(wdb, w["sec"], b.id, now=at(2, 18))
    wdb.rollback()
    with pytest.raises(NotAllowed):
        engine.check_in(wdb, w["booker"], b.id, now=at(2, 19))
    wdb.rollback()
    engine.check_in(wdb, w["sec"], b.id, now=at(2, 18, 45))
    wdb.commit()
    assert b.status == "completed"
    other = book(wdb, w, start=at(3, 19), end=at(3, 20))
    engine.check_in(wdb, w["sec"], other.id, no_show=True, now=at(3, 19, 15))
    wdb.commit()
    assert other.status == "no_show"


def test_week_slots_and_free_venues(wdb, w, make):
    book(wdb, w, units=2)
    days = week_slots(wdb, None, w["court"], date(2026, 12, 2), NOW, days=1)
    slot = next(s for s in days[0][1] if s.start == at(2, 19))
    assert (slot.free, slot.state, slot.bookings) == (1, "partial", ())
    owner_view = week_slots(wdb, w["sec"], w["court"], date(2026, 12, 2), NOW, days=1)
    assert next(s for s in owner_view[0][1] if s.start == at(2, 19)).bookings[0][1] == "邮政团支部"
    venues = [w["court"], w["court2"], w["hall"]]
    assert free_venue_ids(wdb, venues, at(2, 19), at(2, 20), 2, NOW) == {w["court2"].id}
    assert free_venue_ids(wdb, venues, at(2, 19), at(2, 20), 1, NOW) == {
        w["court"].id,
        w["court2"].id,
    }


def test_engine_refuses_a_non_writer_session_on_sqlite(db, w, db_kind):
    if db_kind != "sqlite":
        pytest.skip("PostgreSQL locks rows; any session is fine")
    booker = db.merge(w["booker"])
    with pytest.raises(RuntimeError, match="writer session"):
        engine.book(db, booker, w["court"].id, w["g_other"].id, at(2, 19), at(2, 20), now=NOW)


def _edit_court_rules(db, venue_id, how):
    """Another connection changes the court's rules and commits."""
    from mapservice.models import OpeningHours

    db.rollback()  # a fresh transaction: the fixtures' reads are behind the writer's commits
    if how == "closure":
        db.add(Closure(venue_id=venue_id, start_at=at(2, 18), end_at=at(2, 22), reason="检修"))
    elif how == "max_duration":
        db.get(Venue, venue_id).max_duration_minutes = 60
    elif how == "hours":
        for h in db.scalars(select(OpeningHours).where(OpeningHours.venue_id == venue_id)):
            h.end_min = 19 * 60
    elif how == "paired_only":
        db.get(Venue, venue_id).bookable_by = "paired"
    db.commit()


@pytest.mark.parametrize(
    "how, code",
    [
        ("closure", "closed"),
        ("max_duration", "too_long"),
        ("hours", "outside_hours"),
        ("paired_only", "not_allowed"),
    ],
)
def test_rules_changed_between_the_checks_and_the_lock_are_honoured(db, wdb, w, how, code):
    court_id = w["court"].id  # read now: after the rollback below it would reload in wdb
    p = engine.prepare(wdb, w["booker"], _request(court_id, w["g_other"].id, 2, 19, 21), now=NOW)
    wdb.rollback()  # SQLite: no write lock held while the other connection edits
    version = p.stamp[0]
    _edit_court_rules(db, court_id, how)
    assert db.scalar(select(Venue.rules_version).where(Venue.id == court_id)) > version
    with pytest.raises(RuleViolation) as info:
        engine.book_prepared(wdb, w["booker"], p)
    assert code in [v.code for v in info.value.violations]
    wdb.rollback()
    assert wdb.scalar(select(Booking.id).where(Booking.venue_id == court_id)) is None


def test_postgresql_book_locks_the_venue_in_the_query_that_reads_it(db_kind, wdb, w):
    """On PostgreSQL book() prepares with ``lock``: the venue's row is locked from the first
    read (another writer cannot take it), and the locked step reads no stamp again. Without
    the lock, prepare() leaves the row free."""
    if db_kind != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite's writer session locks the database)")
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    court_id = w["court"].id

    def other_writer_gets_the_row() -> bool:
        with wdb.get_bind().connect() as other:
            try:
                other.execute(
                    text("SELECT id FROM venues WHERE id = :v FOR UPDATE NOWAIT"), {"v": court_id}
                )
                return True
            except OperationalError:
                return False
            finally:
                other.rollback()

    p = engine.prepare(wdb, w["booker"], _request(court_id, w["g_other"].id, 2, 19, 20), now=NOW)
    assert not p.locked and other_writer_gets_the_row()
    wdb.rollback()
    p = engine.prepare(
        wdb, w["booker"], _request(court_id, w["g_other"].id, 2, 19, 20), now=NOW, lock=True
    )
    assert p.locked and not other_writer_gets_the_row()
    booking = engine.book_prepared(wdb, w["booker"], p)
    wdb.commit()
    assert booking.unit_numbers == [1] and other_writer_gets_the_row()


@pytest.mark.parametrize(
    "who,suspended,code",
    [
        ("booker", "group's", "group_inactive"),
        # Issue 17: a venue of a unit not admitted is not open for booking (the admin books
        # for a group of another unit: only the venue's unit changes).
        ("admin", "venue's", "venue_inactive"),
    ],
)
def test_a_unit_suspended_between_the_checks_and_the_lock_is_refused(
    db, wdb, w, who, suspended, code
):
    court_id = w["court"].id
    unit_id = w["g_other"].unit_id if suspended == "group's" else w["court"].unit_id
    p = engine.prepare(wdb, w[who], _request(court_id, w["g_other"].id, 2, 19, 20), now=NOW)
    wdb.rollback()
    db.rollback()
    db.get(Unit, unit_id).status = "suspended"
    db.commit()
    with pytest.raises(RuleViolation) as info:
        engine.book_prepared(wdb, w[who], p)
    assert info.value.violations[0].code == code
    wdb.rollback()
    assert wdb.scalar(select(Booking.id).where(Booking.venue_id == court_id)) is None


def test_unchanged_rules_book_from_the_prepared_request(db, wdb, w):
    court2_id = w["court2"].id
    p = engine.prepare(
        wdb, w["booker"], _request(w["court"].id, w["g_other"].id, 2, 19, 20), now=NOW
    )
    wdb.rollback()
    db.rollback()
    db.get(Venue, court2_id).max_duration_minutes = 60  # another venue: no effect here
    db.commit()
    b = engine.book_prepared(wdb, w["booker"], p)
    wdb.commit()
    assert (b.status, b.unit_numbers, b.start_at, b.end_at) == (
        "confirmed",
        [1],
        at(2, 19),
        at(2, 20),
    )
    entry = wdb.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "booking.create", AuditEntry.object_id == b.id
        )
    ).one()
    assert entry.actor_name == "booker" and '"units": [1]' in entry.details


def test_expired_hold_is_released_when_its_slot_is_booked(wdb, w):
    held = book(wdb, w, who="booker", venue="hall", start=at(2, 10), end=at(2, 11))
    assert held.status == "pending"
    later = NOW + timedelta(hours=49)  # the hall's 48-hour hold ran out
    taker = book(
        wdb,
        w,
        who="booker_third",
        venue="hall",
        group="g_third",
        start=at(3, 10),
        end=at(3, 11),
        now=later,
    )
    assert taker.status == "pending"
    wdb.refresh(held)
    assert (held.status, held.status_reason, held.unit_numbers) == ("declined", "expired", [])


def test_every_rule_edit_moves_the_venue_rules_version(db, wdb, w):
    """The database bumps ``rules_version`` itself, whatever code path edits the rules."""
    from sqlalchemy import delete, insert

    from mapservice.models import OpeningHours, venue_paired_units

    court_id, other_unit = w["court"].id, w["g_other"].unit_id
    wdb.rollback()  # reading those ids reloaded them in the writer session
    db.rollback()

    def version() -> int:
        return db.scalar(select(Venue.rules_version).where(Venue.id == court_id))

    seen = [version()]
    for edit in (
        insert(venue_paired_units).values(venue_id=court_id, unit_id=other_unit),
        delete(venue_paired_units).where(venue_paired_units.c.venue_id == court_id),
        insert(Closure).values(venue_id=court_id, start_at=at(5, 8), end_at=at(5, 12)),
        delete(Closure).where(Closure.venue_id == court_id),
        delete(OpeningHours).where(OpeningHours.venue_id == court_id, OpeningHours.weekday == 6),
        Venue.__table__.update().where(Venue.id == court_id).values(min_notice_minutes=0),
    ):
        db.execute(edit)
        db.commit()
        seen.append(version())
    assert all(b > a for a, b in zip(seen, seen[1:], strict=False)), seen


def test_outside_hours_message_ends_an_evening_at_24_00(wdb, make):
    committee = make.committee(slug="evening", with_streets=False)
    unit = make.unit(committee, "晚场单位")
    group = make.group(committee, unit, "晚场团支部")
    venue = make.venue(unit, name="晚场球馆", hours="Mon-Sun 20:00-24:00", min_notice_minutes=0)
    booker = make.booker(group, username="evening-booker")
    with use_locale("en"), pytest.raises(RuleViolation) as info:
        engine.book(wdb, booker, venue.id, group.id, at(2, 8), at(2, 9), now=NOW)
    wdb.rollback()
    messages = [v.message for v in info.value.violations if v.code == "outside_hours"]
    assert messages == ["Outside opening hours; that day the venue is open 20:00-24:00."]
