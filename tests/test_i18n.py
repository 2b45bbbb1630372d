"""Translations: the zh_CN catalogue is complete and matches the source, and the app speaks
Chinese by default and English on request (remembered in the ``lang`` cookie)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "mapservice" / "translations"
POT = TRANSLATIONS / "messages.pot"
ZH_PO = TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po"
# The same command `make translations` runs (see babel.cfg).
EXTRACT_ARGS = [
    "extract",
    "-F",
    "babel.cfg",
    "-k",
    "_l",
    "-k",
    "_",
    "-k",
    "N_",
    "--ignore-dirs",
    ".* _* node_modules",
]
# %(name)s, %(lon).6f, %(n)d, ... — the whole placeholder, conversion included.
PLACEHOLDER = re.compile(r"%\([^)]*\)[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa]")
HOW_TO_FIX = (
    "run `make translations` (pybabel extract -F babel.cfg -k _l -k _ -k N_"
    " --ignore-dirs '.* _* node_modules' -o mapservice/translations/messages.pot ."
    " && pybabel update -i mapservice/translations/messages.pot -d mapservice/translations),"
    " then translate the new entries in"
    " mapservice/translations/zh_CN/LC_MESSAGES/messages.po"
)


def load(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh)


def msgids(catalog: Catalog) -> set[str]:
    return {str(m.id) for m in catalog if m.id}


def placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text))


def test_every_zh_cn_message_is_translated_with_the_same_placeholders() -> None:
    catalog = load(ZH_PO)
    assert not catalog.fuzzy, "the zh_CN catalogue header is marked fuzzy"
    problems: list[str] = []
    for message in catalog:
        if not message.id:
            continue
        assert isinstance(message.id, str), f"unexpected plural entry {message.id!r}"
        if not message.string or not str(message.string).strip():
            problems.append(f"untranslated: {message.id!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        elif placeholders(message.id) != placeholders(str(message.string)):
            problems.append(
                f"placeholders differ: {message.id!r} {sorted(placeholders(message.id))}"
                f" -> {message.string!r} {sorted(placeholders(str(message.string)))}"
            )
    for message, errors in catalog.check():
        problems.extend(f"{message.id!r}: {error}" for error in errors)
    assert len(msgids(catalog)) > 100
    assert not problems, "zh_CN catalogue problems:\n" + "\n".join(problems)


def test_catalogues_are_up_to_date_with_the_source(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", *EXTRACT_ARGS, "-o", str(fresh), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    source = msgids(load(fresh))
    assert "Log in" in source and "User name" in source  # templates and lazy form labels
    for name, path in (("zh_CN catalogue", ZH_PO), ("messages.pot", POT)):
        committed = msgids(load(path))
        missing = sorted(source - committed)
        stale = sorted(committed - source)
        assert not missing and not stale, (
            f"The {name} is out of date with the source; {HOW_TO_FIX}.\n"
            f"Strings not in the {name}: {missing}\nStrings no longer in the source: {stale}"
        )


@pytest.fixture
def i18n_client(tmp_path: Path) -> Any:
    from mapservice import create_app
    from mapservice.migrate import upgrade

    url = "sqlite:///" + str(tmp_path / "t.db")
    upgrade(url)
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "x", "INSTANCE_PATH": tmp_path, "TESTING": True}
    )
    yield app.test_client()
    app.extensions["db_engine"].dispose()


def test_login_page_is_chinese_by_default(i18n_client: Any) -> None:
    response = i18n_client.get("/login")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "登录" in page and "用户名" in page and "密码" in page
    assert "Log in" not in page and "User name" not in page


def test_lang_parameter_switches_to_english_and_the_cookie_keeps_it(i18n_client: Any) -> None:
    response = i18n_client.get("/login?lang=en")
    page = response.get_data(as_text=True)
    assert "Log in" in page and "User name" in page
    assert "登录" not in page
    assert "lang=en" in response.headers.get("Set-Cookie", "")

    page = i18n_client.get("/login").get_data(as_text=True)
    assert "Log in" in page and "登录" not in page

    page = i18n_client.get("/login?lang=zh_CN").get_data(as_text=True)
    assert "登录" in page and "Log in" not in page
    assert "登录" in i18n_client.get("/login").get_data(as_text=True)


def test_the_language_switch_keeps_the_page_and_its_query(i18n_client: Any) -> None:
    """Switching language on a committee's map keeps that committee (and any filter)."""
    page = i18n_client.get("/login?next=/map&committee=runzhou").get_data(as_text=True)
    switch = re.search(r'href="([^"]+)" id="lang-switch"', page)
    assert switch is not None
    href = switch.group(1).replace("&amp;", "&")
    assert href.startswith("/login?") and "committee=runzhou" in href and "next=%2Fmap" in href
    assert href.endswith("lang=en")
    english = i18n_client.get(href).get_data(as_text=True)
    back = re.search(r'href="([^"]+)" id="lang-switch"', english)
    assert back is not None and back.group(1).count("lang=") == 1  # replaced, not appended
    assert "lang=zh_CN" in back.group(1) and "committee=runzhou" in back.group(1)
