"""The venue list in pages of :data:`mapservice.web.venues.PER_PAGE`: a city's ten thousand
venues are no longer one page. Every venue the filters keep is on exactly one page, in the
list's order (unit name, then venue name); the count and the no-hours warning count them
all, not the page's; the filters ride along the page links; any ``page`` lands on a page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import delete

from mapservice.models import OpeningHours
from mapservice.web.venues import PER_PAGE
from tests.conftest import login

ROW = re.compile(r'<tr data-venue-id="(\d+)"')


@pytest.fixture
def city(make: Any, db: Any) -> dict[str, Any]:
    """PER_PAGE × 2 + 30 courts over two units and three meeting rooms (3 pages)."""
    committee = make.committee()
    units = [make.unit(committee, "单位甲"), make.unit(committee, "单位乙")]
    make.user(committee, "committee_admin", username="管理员")
    courts = [
        make.venue(units[i % 2], name=f"场地{i:03d}", type="basketball")
        for i in range(2 * PER_PAGE + 30)
    ]
    rooms = [make.venue(units[0], name=f"会议室{i}", type="meeting_room") for i in range(3)]
    return {"courts": courts, "rooms": rooms}


def rows(client: Any, query: str) -> tuple[list[int], str]:
    page = client.get(f"/venues/{query}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    return [int(i) for i in ROW.findall(text)], text


def test_every_venue_on_exactly_one_page_in_order(client, city):
    login(client, "管理员")
    everyone = {v.id for v in [*city["courts"], *city["rooms"]]}
    pages, seen = [], []
    for n in (1, 2, 3):
        ids, text = rows(client, f"?page={n}")
        pages.append(ids)
        seen += ids
        assert f'id="venue-count">{len(everyone)}<' in text  # all of them, not the page's
        assert f"第{n}页，共3页" in text
    assert [len(p) for p in pages] == [PER_PAGE, PER_PAGE, len(everyone) - 2 * PER_PAGE]
    assert len(seen) == len(set(seen)) and set(seen) == everyone
    # The list's order runs on across the pages: the same as the whole list's.
    whole = sorted([*city["courts"], *city["rooms"]], key=lambda v: v.id)
    names = {v.id: (v.unit.name, v.name) for v in whole}
    keys = [names[i] for i in seen]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)  # by unit
    for unit in {k[0] for k in keys}:
        within = [k[1] for k in keys if k[0] == unit]
        assert within == sorted(within)  # then by name (ASCII digits: any collation agrees)


def test_the_warning_counts_every_page_and_the_rows_are_marked_where_they_are(client, city, db):
    login(client, "管理员")
    first, text = rows(client, "")
    assert 'id="no-hours-alert"' not in text
    last, _text = rows(client, "?page=3")
    hourless = last[-2:]  # two venues of the last page lose their hours
    db.execute(delete(OpeningHours).where(OpeningHours.venue_id.in_(hourless)))
    db.commit()
    first, text = rows(client, "")
    assert not set(hourless) & set(first)
    alert = re.search(r'id="no-hours-alert"[^>]*>([^<]*)<', text)
    assert alert and re.search(r"(?<!\d)2(?!\d)", alert.group(1)), "two, though on page 3"
    last, text = rows(client, "?page=3")
    for vid in hourless:
        row = re.search(rf'<tr data-venue-id="{vid}".*?</tr>', text, re.S)
        assert row and "no-hours" in row.group(0)


def test_filters_ride_along_and_a_short_list_has_no_pages(client, city):
    login(client, "管理员")
    _ids, text = rows(client, "?type=basketball&q=%E5%9C%BA%E5%9C%B0")  # q=场地
    nxt = re.search(r'<a class="page-link" rel="next" href="([^"]+)"', text)
    assert nxt, "no link to the next page"
    link = nxt.group(1).replace("&amp;", "&")
    assert "page=2" in link and "type=basketball" in link and "q=" in link
    ids, text = rows(client, link.removeprefix("/venues/"))
    assert len(ids) == PER_PAGE and not set(ids) & {v.id for v in city["rooms"]}
    ids, text = rows(client, "?type=meeting_room")
    assert sorted(ids) == sorted(v.id for v in city["rooms"])
    assert 'id="venue-pages"' not in text


def test_any_page_asked_lands_on_a_page(client, city):
    login(client, "管理员")
    total = len(city["courts"]) + len(city["rooms"])
    for asked in ("0", "-1", "abc", "", "99", "99999999999999999999", "3", "2"):
        ids, _text = rows(client, f"?page={asked}")
        expected = total - 2 * PER_PAGE if asked in ("99", "3") else PER_PAGE
        assert len(ids) == expected, asked
