"""Record ids read from people (query strings, form fields, cookies): digits only (ASCII: "²"
is a digit to :meth:`str.isdigit` but not to :func:`int`), 1 … :data:`MAX_ID` — one past the
database's 32-bit id columns would overflow there, a 500 instead of "not found"."""

from __future__ import annotations

MAX_ID = 2**31 - 1


def as_id(text: str | None) -> int | None:
    """The id ``text`` names, or None when it names none."""
    value = (text or "").strip()
    if not value or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None
