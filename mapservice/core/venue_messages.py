"""The import's messages: a ``RowError`` as text in the reader's language, through gettext
(English msgids, the zh_CN catalogue). Columns and choices are named as the reader's language
names them (所属单位 / unit, 羽毛球馆 / badminton)."""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum

from mapservice.core.hours import day_name
from mapservice.core.i18n import N_, _, use_locale
from mapservice.core.venue_rows import KEYS, RowError, choice_label, field_label
from mapservice.core.vocab import BookableBy, Crs, VenueType

#: code -> English template (a msgid); placeholders come from ``RowError.params``.
MESSAGES: dict[str, str] = {
    "required": N_("is required"),
    "too_long": N_("must be at most %(max)s characters, got %(length)s"),
    "not_text": N_("must be text, got '%(value)s'"),
    "not_a_number": N_("must be a number, got '%(value)s'"),
    "not_an_integer": N_("must be a whole number from %(min)s to %(max)s, got '%(value)s'"),
    "out_of_range": N_("must be from %(min)s to %(max)s, got '%(value)s'"),
    "not_allowed": N_("must be one of %(allowed)s, got '%(value)s'"),
    "not_a_boolean": N_("must be yes or no (true/false), got '%(value)s'"),
    "unknown_type": N_("'%(value)s' is not a known venue type; choose from: %(choices)s"),
    "unknown_crs": N_("'%(value)s' is not a known coordinate system; choose from: %(choices)s"),
    "unknown_bookable_by": N_(
        "'%(value)s' is not a known bookable-by value; choose from: %(choices)s"
    ),
    "bad_phone": N_(
        "may contain only digits, spaces, +, - and parentheses, 3 to 30 characters, got '%(value)s'"
    ),
    "bad_hours": N_(
        "opening hours are not valid (%(reason)s: '%(detail)s'), got '%(value)s';"
        " example: Mon-Fri 09:00-21:00; Sat,Sun 08:00-12:00"
    ),
    "not_multiple_of_slot": N_("must be a multiple of the %(slot)s-minute slot, got '%(value)s'"),
    "max_below_min": N_(
        "must not be less than the minimum duration of %(min)s minutes, got '%(value)s'"
    ),
    "bad_geometry": N_("geometry must be a Point with coordinates [longitude, latitude]"),
    "extra_cells": N_("column %(column)s has a value but no header"),
    "duplicate_name": N_(
        "unit '%(unit)s' already has a venue named '%(value)s' (row %(first_row)s)"
    ),
    "unknown_column": N_("unknown columns: %(columns)s (check the spelling; allowed: %(allowed)s)"),
    "missing_column": N_("required columns are missing: %(columns)s"),
    "duplicate_column": N_("columns appear more than once: %(columns)s"),
    "unknown_format": N_(
        "unsupported file type '%(value)s'; upload a .csv, .xlsx or .geojson file"
    ),
    "bad_encoding": N_(
        "the file's text encoding is not recognised; save it as CSV in UTF-8 or GBK"
    ),
    "bad_csv": N_("the CSV is malformed (unbalanced quotes or separators); save it again as CSV"),
    "cell_too_long": N_("a cell is longer than %(max)s characters; perhaps a quote is not closed"),
    "too_many_lines": N_(
        "the file has too many lines (over %(max)s, blank lines included);"
        " delete the empty rows or split the file"
    ),
    "xlsx_too_large": N_(
        "the Excel file unpacks to more than %(max)s MB and may be damaged;"
        " save it as CSV or split it"
    ),
    "bad_json": N_(
        "not a valid GeoJSON file: JSON syntax error near line %(line)s, column %(column)s"
    ),
    "not_xlsx": N_("not a valid Excel (.xlsx) file; it may be damaged or in the old .xls format"),
    "not_geojson": N_("not a valid GeoJSON file (a FeatureCollection is required): %(detail)s"),
    "empty_file": N_("the file contains no venues"),
    "too_many_rows": N_(
        "too many rows: at most %(max)s venues per file; split it into several files"
    ),
}

#: HoursError codes -> reason.
_HOURS_REASONS: dict[str, str] = {
    "bad_time": N_("bad time"),
    "bad_day": N_("bad day"),
    "bad_clause": N_("missing days or times"),
    "bad_range": N_("bad time range"),
    "end_before_start": N_("end is not after start"),
    "overlap": N_("overlapping ranges"),
}

#: not_geojson details -> reason.
_GEOJSON_REASONS: dict[str, str] = {
    "not_utf8": N_("not UTF-8 text"),
    "not_collection": N_("the top level is not a FeatureCollection"),
    "features_not_list": N_("'features' is not a list"),
    "too_deep": N_("nested too deeply"),
}

_CHOICES: dict[str, type[StrEnum]] = {
    "unknown_type": VenueType,
    "unknown_crs": Crs,
    "unknown_bookable_by": BookableBy,
}


def _params(err: RowError, lang: str) -> defaultdict[str, str]:
    english = lang.startswith("en")
    sep = ", " if english else "、"
    params: defaultdict[str, str] = defaultdict(str, err.params)
    params["row"] = str(err.row)
    params["field"] = field_label(err.field, lang)
    if err.code == "bad_hours" and "reason" in err.params:
        reason = _HOURS_REASONS.get(err.params["reason"])
        if reason is not None:
            params["reason"] = _(reason)
        weekday = err.params.get("weekday", "")
        if weekday.isdigit() and int(weekday) < 7:
            params["detail"] = f"{day_name(int(weekday), lang)} {err.params.get('detail', '')}"
    if err.code in ("missing_column", "duplicate_column"):
        params["columns"] = sep.join(
            field_label(c.strip(), lang) for c in err.params.get("columns", "").split(",")
        )
    if err.code == "unknown_column":
        params["allowed"] = sep.join(field_label(k, lang) for k in KEYS)
    if err.code in _CHOICES:
        # English: the keys (as a CSV export writes them); Chinese: the labels. Both import.
        params["choices"] = sep.join(
            str(m.value) if english else choice_label(_CHOICES[err.code], str(m.value))
            for m in _CHOICES[err.code]
        )
    if err.code == "not_geojson":
        detail = _GEOJSON_REASONS.get(err.params.get("detail", ""))
        if detail is not None:
            params["detail"] = _(detail)
    return params


def _text(err: RowError, params: defaultdict[str, str]) -> str:
    template = MESSAGES.get(err.code)
    try:
        return _(template) % params if template else err.code
    except (ValueError, TypeError, KeyError):  # pragma: no cover - defensive
        return err.code


def field_message(err: RowError, lang: str = "zh") -> str:
    """The message for ``err`` alone, without row or file (shown beside a form's field)."""
    with use_locale("en" if lang.startswith("en") else "zh_CN"):
        return _text(err, _params(err, lang))


def message(err: RowError, lang: str = "zh") -> str:
    """The human message for ``err`` in Chinese (default) or English (``lang`` "en…")."""
    with use_locale("en" if lang.startswith("en") else "zh_CN"):
        params = _params(err, lang)
        text = _text(err, params)
        if err.row > 0 and err.field:
            return _(
                "Row %(row)s, %(field)s: %(message)s",
                row=params["row"],
                field=params["field"],
                message=text,
            )
        if err.row > 0:
            return _("Row %(row)s: %(message)s", row=params["row"], message=text)
        return _("File: %(message)s", message=text)
