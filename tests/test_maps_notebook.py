"""From a notebook (issue 18, item 6): ``from mapservice.maps import one_map`` with a committee
slug and a database URL, outside any app or request, gives the committee's public one map as
a folium map whose scripts are the installed files, ready to ``save`` (docs/maps.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from mapservice.core.errors import NotFound, ValidationFailed
from mapservice.maps import one_map


@pytest.fixture
def world(make: Any) -> None:
    committee = make.committee()
    unit = make.unit(committee, name="润州区团委")
    make.venue(unit, name="篮球场甲", type="basketball", address="中山路1号")
    make.venue(unit, name="会议室乙", type="meeting_room")
    make.venue(unit, name="未发布丙", published=False)
    applied = make.unit(committee, name="待审单位")
    make.venue(applied, name="申请中丁")
    applied.status = "applied"  # not admitted (any more): its venues are off the public map
    make.session.commit()


def _names(html: str) -> set[str]:
    return {n for n in re.findall(r"[\u4e00-\u9fff]+[甲乙丙丁]", html)}


def test_a_notebook_draws_the_public_map_of_a_committee_from_its_database_url(
    world: None, database_url: str, tmp_path: Path
) -> None:
    m = one_map(committee="runzhou", database_url=database_url)
    html = m.get_root().render()
    # What a visitor's map shows: published venues of admitted units of this committee.
    assert _names(html) == {"篮球场甲", "会议室乙"}
    assert "中山路1号" in html  # the popup's text travels with the venue
    assert "润州区团委" in html
    # Every script and style is an installed file: the saved map needs no server, no network.
    urls = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("file://") for u in urls), urls
    assert all(Path(unquote(urlsplit(u).path)).is_file() for u in urls)
    out = tmp_path / "map.html"
    m.save(str(out))
    assert "篮球场甲" in out.read_text(encoding="utf-8")


def test_the_notebook_map_takes_the_pages_filters_and_refuses_what_the_page_refuses(
    world: None, database_url: str
) -> None:
    only = one_map(committee="runzhou", database_url=database_url, filters={"types": "basketball"})
    assert _names(only.get_root().render()) == {"篮球场甲"}
    with pytest.raises(NotFound, match="qiqihar2"):
        one_map(committee="qiqihar2", database_url=database_url)
    with pytest.raises(ValidationFailed) as refused:
        one_map(
            committee="runzhou", database_url=database_url, filters={"types": "pool"}, lang="en"
        )
    assert refused.value.fields == {"types": "'pool' is not a valid choice."}
    with pytest.raises(ValidationFailed) as unknown_unit:
        one_map(committee="runzhou", database_url=database_url, filters={"unit": "99999"})
    assert "99999" in unknown_unit.value.fields["unit"]
