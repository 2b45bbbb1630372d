"""The venue spec (``core/venue_spec.py``) is the one declaration of a venue's fields: every
surface that checks or shows a venue agrees with it — the WTForms form, the API's pydantic
schemas, the file import, the database's check constraints, the operations' checks and the
serializers. Each range is tried at its bounds on every surface: the first value outside is
refused and the bound itself accepted (14 refused, 15 accepted for a minimum duration)."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from mapservice.api import schemas
from mapservice.booking.rules import VenueRules
from mapservice.core import venue_spec
from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _, use_locale
from mapservice.core.venue_io import COLUMNS, KEYS, SYNONYMS, VenueRow, read_venues
from mapservice.core.venue_rows import header_key
from mapservice.models import Venue
from mapservice.operations.venues import row_of, venue_values

SPEC = venue_spec.BY_NAME
#: Values of other fields a bound needs to be valid at all (durations on a 15-minute grid).
CONTEXT: dict[str, dict[str, int]] = {
    "min_duration_minutes": {"slot_minutes": 15, "max_duration_minutes": 1440},
    "max_duration_minutes": {"slot_minutes": 15, "min_duration_minutes": 15},
}
RANGED = [
    f
    for f in venue_spec.FIELDS
    if f.kind in ("int", "float") and not f.choices and f.min is not None
]


def bounds(spec: venue_spec.VenueField) -> list[tuple[float, bool]]:
    """(value, accepted) at both ends of the field's range."""
    assert spec.min is not None and spec.max is not None
    step = 1 if spec.kind == "int" else 0.5
    return [
        (spec.min - step, False),
        (spec.min, True),
        (spec.max, True),
        (spec.max + step, False),
    ]


def cases(surface: venue_spec.Surface, kinds: tuple[str, ...] = ("int", "float")) -> list[Any]:
    """(field, value, accepted) at the bounds of every ranged field ``surface`` carries."""
    return [
        pytest.param(f.name, value, ok, id=f"{f.name}={value:g}")
        for f in RANGED
        if surface in f.surfaces and f.kind in kinds
        for value, ok in bounds(f)
    ]


def number(name: str, value: float) -> float | int:
    return int(value) if SPEC[name].kind == "int" else value


# ------------------------------------------------------------------ the spec itself


def test_the_spec_is_complete_and_consistent() -> None:
    names = [f.name for f in venue_spec.FIELDS]
    assert len(names) == len(set(names))
    for f in venue_spec.FIELDS:
        assert f.label and f.surfaces, f.name
        if f.kind in ("int", "float"):
            assert f.min is not None and f.max is not None and f.min <= f.max, f.name
            if f.default is not None:
                assert f.min <= f.default <= f.max, f.name  # type: ignore[operator]
        if f.choices:
            assert f.default in f.choices and min(f.choices) == f.min and max(f.choices) == f.max
        if f.kind == "choice":
            assert f.enum is not None and (f.default is None or f.default in set(f.enum))
        if f.kind == "text":
            assert f.max_length, f.name
    # Labels are catalogue entries: Chinese on the Chinese UI, English on the English one.
    with use_locale("zh_CN"):
        assert _(SPEC["capacity_units"].label).startswith("可并行")
        assert all(_(f.label) != f.label for f in venue_spec.FIELDS)
    with use_locale("en"):
        assert _(SPEC["capacity_units"].label) == SPEC["capacity_units"].label


def test_import_columns_and_their_chinese_aliases_come_from_the_spec() -> None:
    fields = venue_spec.on("import")
    assert KEYS == tuple(f.name for f in fields)
    assert COLUMNS[:3] == (("name", "名称"), ("unit", "所属单位"), ("type", "类型"))
    for f in fields:
        for header in (f.name, f.zh_header, *f.synonyms):
            assert header_key(header) == f.name, header
    assert SYNONYMS["max_headcount"][0] == "最多容纳人数" and header_key("单位") == "unit"
    assert header_key("时段长度") == "slot_minutes"  # the bracketed unit is optional


def test_venue_row_defaults_are_the_specs() -> None:
    row_fields = {f.name: f for f in dataclasses.fields(VenueRow) if f.name != "row"}
    assert list(row_fields) == list(KEYS)
    for name, fld in row_fields.items():
        spec = SPEC[name]
        if spec.required:
            assert fld.default is dataclasses.MISSING, name
        else:
            assert fld.default == spec.default, name


# ------------------------------------------------------------------ the form


def _form_field(name: str) -> Any:
    from mapservice.web.forms import VenueForm

    return getattr(VenueForm, "hours_0" if name == "hours" else name)


def test_every_form_field_is_declared_by_the_spec(app: Any) -> None:
    from wtforms import SelectField
    from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

    from mapservice.web.forms import VenueForm

    with app.test_request_context(), use_locale("zh_CN"):
        form = VenueForm(meta={"csrf": False})
        for spec in venue_spec.on("form"):
            if spec.name == "hours":
                assert hasattr(form, "hours_0")
                continue
            field = getattr(form, spec.name)
            assert str(field.label.text) == _(spec.label), spec.name  # translated per request
            validators = field.validators
            ranges = [v for v in validators if isinstance(v, NumberRange)]
            if spec.kind in ("int", "float") and not spec.choices:
                assert [(r.min, r.max) for r in ranges] == [(spec.min, spec.max)], spec.name
            lengths = [v.max for v in validators if isinstance(v, Length)]
            if spec.kind == "text" and not isinstance(field, SelectField):
                assert lengths == [spec.max_length], spec.name
            if spec.required:
                assert any(isinstance(v, DataRequired | InputRequired) for v in validators)
            if spec.choices:
                assert [c.value for c in field.choices] == [str(c) for c in spec.choices]
            if spec.default not in (None, "") and not spec.required:
                assert field.default == spec.default, spec.name


@pytest.mark.parametrize(("name", "value", "ok"), cases("form"))
def test_form_bounds(app: Any, name: str, value: float, ok: bool) -> None:
    from mapservice.web.forms import VenueForm

    with app.test_request_context():
        data = MultiDict({name: str(number(name, value))})
        form = VenueForm(formdata=data, meta={"csrf": False})
        field = getattr(form, name)
        assert field.validate(form) is ok, field.errors


@pytest.mark.parametrize(("phone", "ok"), [("12", False), ("123", True), ("1" * 31, False)])
def test_form_phone(app: Any, phone: str, ok: bool) -> None:
    from mapservice.web.forms import VenueForm

    with app.test_request_context():
        form = VenueForm(formdata=MultiDict({"phone": phone}), meta={"csrf": False})
        assert form.phone.validate(form) is ok


# ------------------------------------------------------------------ the API schemas


def test_api_schemas_carry_the_specs_constraints() -> None:
    api = {f.name for f in venue_spec.on("api")}
    assert set(schemas.VenueIn.model_fields) == api - {"street"}  # the street is assigned
    assert set(schemas.VenuePatch.model_fields) == api - {"street", "unit"}
    for model in (schemas.VenueIn, schemas.VenuePatch):
        props = model.model_json_schema()["properties"]
        for name, prop in props.items():
            spec = SPEC[name]
            shapes = prop.get("anyOf", [prop])
            typed = next((s for s in shapes if s.get("type") not in (None, "null")), {})
            if spec.kind in ("int", "float") and not spec.choices:
                assert (typed["minimum"], typed["maximum"]) == (spec.min, spec.max), name
            if spec.choices:
                assert sorted(typed["enum"]) == sorted(spec.choices), name
            if spec.kind == "text" and name != "unit":
                assert typed["maxLength"] == spec.max_length, name
            if model is schemas.VenueIn and not spec.required and name != "unit":
                assert prop.get("default") == spec.default, name
    required = set(schemas.VenueIn.model_json_schema()["required"])
    assert required == {f.name for f in venue_spec.on("api") if f.required} - {"unit"}


BASE_IN: dict[str, Any] = {"name": "场地", "type": "gym", "lon": 119.4, "lat": 32.2}


@pytest.mark.parametrize(("name", "value", "ok"), cases("api"))
def test_api_bounds(name: str, value: float, ok: bool) -> None:
    body = {**BASE_IN, **CONTEXT.get(name, {}), name: number(name, value)}
    for model, data in ((schemas.VenueIn, body), (schemas.VenuePatch, {name: body[name]})):
        if ok:
            model.model_validate(data)
        else:
            with pytest.raises(ValidationError):
                model.model_validate(data)


@pytest.mark.parametrize(("phone", "ok"), [("", True), ("12", False), ("123", True)])
def test_api_phone(phone: str, ok: bool) -> None:
    if ok:
        schemas.VenueIn.model_validate({**BASE_IN, "phone": phone})
    else:
        with pytest.raises(ValidationError):
            schemas.VenueIn.model_validate({**BASE_IN, "phone": phone})


# ------------------------------------------------------------------ the file import


def import_one(values: dict[str, Any]) -> tuple[list[VenueRow], list[Any]]:
    row = {"name": "场地", "unit": "单位", "type": "gym", "lon": 119.4, "lat": 32.2, **values}
    buf = io.StringIO()
    buf.write(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n")
    return read_venues(buf.getvalue().encode(), "v.csv")


@pytest.mark.parametrize(("name", "value", "ok"), cases("import"))
def test_import_bounds(name: str, value: float, ok: bool) -> None:
    rows, errors = import_one({**CONTEXT.get(name, {}), name: number(name, value)})
    if ok:
        assert not errors and getattr(rows[0], name) == number(name, value)
    else:
        assert not rows and [(e.field, e.code) for e in errors] == [(name, "out_of_range")]


@pytest.mark.parametrize("name", [f.name for f in venue_spec.on("import") if f.kind == "text"])
def test_import_text_lengths(name: str) -> None:
    spec = SPEC[name]
    assert spec.max_length
    fill = "1" if spec.pattern else "字"
    rows, errors = import_one({name: fill * spec.max_length} if name != "hours" else {})
    assert rows and not errors
    rows, errors = import_one({name: fill * (spec.max_length + 1)})
    assert not rows and [(e.field, e.code) for e in errors] == [(name, "too_long")]


def test_import_slot_choices_and_phone_pattern() -> None:
    for slot in venue_spec.field("slot_minutes").choices:
        rows, errors = import_one({"slot_minutes": slot, "min_duration_minutes": 120})
        assert rows and not errors
    _rows, errors = import_one({"slot_minutes": 45})
    assert [e.code for e in errors] == ["not_allowed"]
    assert import_one({"phone": "123"})[0]
    assert [e.code for e in import_one({"phone": "12"})[1]] == ["bad_phone"]


# ------------------------------------------------------------------ the database


@pytest.mark.parametrize(("name", "value", "ok"), cases("db"))
def test_database_bounds(db: Any, make: Any, name: str, value: float, ok: bool) -> None:
    venue = make.venue(make.unit(make.committee(with_streets=False)))
    for key, other in CONTEXT.get(name, {}).items():
        setattr(venue, key, other)
    setattr(venue, name, number(name, value))
    if ok:
        db.commit()
        db.refresh(venue)
        assert getattr(venue, name) == number(name, value)
    else:
        with pytest.raises(IntegrityError):
            db.commit()
        db.rollback()


def test_database_column_lengths_are_the_specs() -> None:
    columns = Venue.__table__.c
    for spec in venue_spec.on("db"):
        if spec.kind == "text" and spec.stored and spec.name in columns:
            length = getattr(columns[spec.name].type, "length", None)
            assert length in (spec.max_length, None), spec.name  # None: Text (facilities)
        if spec.stored and spec.default is not None:
            assert columns[spec.name].default.arg == spec.default, spec.name


def test_database_checks_are_derived_from_the_spec() -> None:
    checks = {
        c.name: str(c.sqltext) for c in Venue.__table__.constraints if c.name.startswith("ck_")
    }
    for name in ("capacity_units", "max_headcount", "max_days_ahead", "hold_hours"):
        assert venue_spec.check_sql(name) in checks.values(), name
    assert "max_headcount BETWEEN 1 AND 10000" in checks["ck_venues_max_headcount"]
    assert "weekly_quota_hours BETWEEN 1 AND 168" in checks["ck_venues_quota"]


# ------------------------------------------------------------------ operations


@pytest.mark.parametrize(("name", "value", "ok"), cases("import", ("int",)))
def test_save_venue_bounds(db: Any, make: Any, name: str, value: float, ok: bool) -> None:
    """``save_venue`` (the form's, the import's, the API's and the seed's one write path);
    coordinates are judged there against the committee's district instead."""
    unit = make.unit(make.committee(with_streets=False))
    kw = {**CONTEXT.get(name, {}), name: number(name, value)}
    if ok:
        assert getattr(make.venue(unit, **kw), name) == number(name, value)
    else:
        with pytest.raises(ValidationFailed) as info:
            make.venue(unit, **kw)
        assert name in info.value.fields
        db.rollback()


# ------------------------------------------------------------------ serializers


def test_one_serializer_for_files_and_api(db: Any, make: Any) -> None:
    venue = make.venue(make.unit(make.committee(with_streets=False)), max_headcount=30)
    values = venue_values(venue)
    assert tuple(values) == venue_spec.STORED
    row = row_of(venue)
    assert {k: getattr(row, k) for k in venue_spec.STORED} == values
    assert [f.name for f in dataclasses.fields(row) if f.name != "row"] == list(KEYS)
    api = {f.name for f in venue_spec.on("api")} - {"lon", "lat", "crs"}
    assert set(schemas.VenueProperties.model_fields) == api | set(venue_spec.API_EXTRA)
    assert set(venue_spec.RULE_FIELDS) <= {f.name for f in dataclasses.fields(VenueRules)}


def test_api_properties_come_from_the_serializer(app: Any, client: Any, db: Any, make: Any) -> None:
    venue = make.venue(make.unit(make.committee(with_streets=False)), weekly_quota_hours=168)
    feature = client.get(f"/api/v1/venues/{venue.id}").get_json()
    props = feature["properties"]
    assert set(props) == set(schemas.VenueProperties.model_fields)
    for key, value in venue_values(venue).items():
        assert props[key] == value, key
