"""The API's request and response schemas (pydantic). The same classes validate requests,
shape responses and generate the OpenAPI document, so the contract cannot drift from the code."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mapservice.core import venue_spec
from mapservice.core.dates import MAX_YEAR, MIN_YEAR, in_calendar
from mapservice.core.vocab import ActivityKind, BookableBy, BookingStatus, Crs, VenueType

# The vocabulary enums themselves are the field types: values in JSON, enums in the schema.
VenueTypeKey = VenueType
CrsKey = Crs
BookableByKey = BookableBy
StatusKey = BookingStatus


def _in_calendar(value: datetime) -> datetime:
    if not in_calendar(value):
        raise ValueError(f"Give a time between the years {MIN_YEAR} and {MAX_YEAR}.")
    return value


#: A time with its offset, within the calendar the service works in (core.dates).
Instant = Annotated[AwareDatetime, AfterValidator(_in_calendar)]
Day = Annotated[date, AfterValidator(_in_calendar)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ errors


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, str] = Field(default_factory=dict)
    conflicts: list[OccupiedOut] | None = None
    alternatives: AlternativesOut | None = None
    occurrences: list[OccurrenceOut] | None = None


class Error(BaseModel):
    """Every failure, whatever the status."""

    error: ErrorBody


# ------------------------------------------------------------------ venues


class VenueQuery(Strict):
    type: str | None = Field(None, description="Venue type key(s), comma-separated.")
    unit: int | None = Field(None, ge=1, le=2**31 - 1, description="Owning unit id.")
    street: int | None = Field(None, ge=1, le=2**31 - 1, description="Street area id.")
    min_capacity: int = Field(1, ge=1, le=100, description="At least this many parallel units.")
    q: str | None = Field(
        None, max_length=100, description="Search in name, unit, address, facilities."
    )
    near: str | None = Field(
        None, pattern=r"^-?\d{1,3}(\.\d+)?,-?\d{1,2}(\.\d+)?$", description="lon,lat (WGS-84)."
    )
    radius_km: float = Field(5.0, gt=0, le=100)
    free_from: Instant | None = Field(None, description="With free_to: free for this window.")
    free_to: Instant | None = None
    units: int = Field(1, ge=1, le=100, description="Units that must be free (with free_from/to).")
    crs: CrsKey = Field(Crs.WGS84, description="Coordinate system of the returned coordinates.")
    page: int = Field(1, ge=1, le=100000)
    per_page: int = Field(100, ge=1, le=500)

    @field_validator("type")
    @classmethod
    def _types(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bad = [t for t in value.split(",") if t not in {v.value for v in VenueType}]
        if bad:
            raise ValueError(f"unknown venue type(s): {', '.join(bad)}")
        return value


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: list[float] = Field(min_length=2, max_length=2)


class VenueProperties(BaseModel):
    id: int
    name: str
    type: VenueTypeKey
    type_label: str
    unit_id: int
    unit: str
    street: str | None
    street_approximate: bool
    address: str
    capacity_units: int
    max_headcount: int | None
    facilities: str
    phone: str
    hours: str
    slot_minutes: int
    min_duration_minutes: int
    max_duration_minutes: int
    max_days_ahead: int
    min_notice_minutes: int
    requires_approval: bool
    bookable_by: BookableByKey
    weekly_quota_hours: int | None
    published: bool
    hold_hours: int
    cancel_cutoff_minutes: int
    retired: bool
    distance_m: float | None = None
    url: str


class VenueFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: int
    geometry: PointGeometry
    properties: VenueProperties


class PageMeta(BaseModel):
    page: int
    per_page: int
    total: int
    crs: CrsKey


class VenueCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[VenueFeature]
    meta: PageMeta


def _venue(name: str, *, patch: bool = False) -> Any:
    """A venue field's pydantic constraints from the venue spec (``core/venue_spec.py``):
    its range, length and pattern; its default (none for a required field; ``None`` in a
    patch, where a field not given keeps its value)."""
    spec = venue_spec.field(name)
    kw: dict[str, Any] = {}
    if spec.kind in ("int", "float") and not spec.choices and spec.min is not None:
        kw.update(ge=spec.min, le=spec.max)
    if spec.max_length:
        kw["max_length"] = spec.max_length
        if spec.required:
            kw["min_length"] = 1
    if spec.pattern:  # or empty: none given
        kw["pattern"] = f"^$|{spec.pattern}"
    if spec.help:
        kw["description"] = spec.help
    if patch or not spec.required:
        kw["default"] = None if patch else spec.default
    return Field(**kw)


class VenueIn(Strict):
    """A venue to register. ``unit`` (the owning unit's name) defaults to the secretary's."""

    name: str = _venue("name")
    unit: str | None = Field(None, max_length=venue_spec.field("unit").max_length)
    type: VenueTypeKey
    lon: float = _venue("lon")
    lat: float = _venue("lat")
    crs: CrsKey = Crs.WGS84
    address: str = _venue("address")
    capacity_units: int = _venue("capacity_units")
    max_headcount: int | None = _venue("max_headcount")
    facilities: str = _venue("facilities")
    phone: str = _venue("phone")
    hours: str = _venue("hours")
    slot_minutes: Literal[15, 30, 60, 120] = 60
    min_duration_minutes: int = _venue("min_duration_minutes")
    max_duration_minutes: int = _venue("max_duration_minutes")
    max_days_ahead: int = _venue("max_days_ahead")
    min_notice_minutes: int = _venue("min_notice_minutes")
    requires_approval: bool = _venue("requires_approval")
    bookable_by: BookableByKey = BookableBy.MEMBERS
    weekly_quota_hours: int | None = _venue("weekly_quota_hours")
    published: bool = _venue("published")
    hold_hours: int = _venue("hold_hours")
    cancel_cutoff_minutes: int = _venue("cancel_cutoff_minutes")


class VenuePatch(Strict):
    """Only the fields given change; ``null`` clears the optional limits (max_headcount,
    weekly_quota_hours) and is refused for every other field."""

    @model_validator(mode="after")
    def _no_nulls(self) -> VenuePatch:
        nullable = {f.name for f in venue_spec.FIELDS if f.nullable}
        bad = sorted(
            k for k in self.model_fields_set if getattr(self, k) is None and k not in nullable
        )
        if bad:
            raise ValueError(f"must not be null: {', '.join(bad)}")
        return self

    name: str | None = _venue("name", patch=True)
    type: VenueTypeKey | None = None
    lon: float | None = _venue("lon", patch=True)
    lat: float | None = _venue("lat", patch=True)
    crs: CrsKey | None = None
    address: str | None = _venue("address", patch=True)
    capacity_units: int | None = _venue("capacity_units", patch=True)
    max_headcount: int | None = _venue("max_headcount", patch=True)
    facilities: str | None = _venue("facilities", patch=True)
    phone: str | None = _venue("phone", patch=True)
    hours: str | None = _venue("hours", patch=True)
    slot_minutes: Literal[15, 30, 60, 120] | None = None
    min_duration_minutes: int | None = _venue("min_duration_minutes", patch=True)
    max_duration_minutes: int | None = _venue("max_duration_minutes", patch=True)
    max_days_ahead: int | None = _venue("max_days_ahead", patch=True)
    min_notice_minutes: int | None = _venue("min_notice_minutes", patch=True)
    requires_approval: bool | None = None
    bookable_by: BookableByKey | None = None
    weekly_quota_hours: int | None = _venue("weekly_quota_hours", patch=True)
    published: bool | None = None
    hold_hours: int | None = _venue("hold_hours", patch=True)
    cancel_cutoff_minutes: int | None = _venue("cancel_cutoff_minutes", patch=True)


class AvailabilityQuery(Strict):
    from_: Instant = Field(alias="from")
    to: Instant


class Interval(BaseModel):
    start: Instant
    end: Instant
    free_units: int
    capacity_units: int
    open: bool


class Availability(BaseModel):
    venue_id: int
    intervals: list[Interval]


# ------------------------------------------------------------------ groups


class GroupOut(BaseModel):
    id: int
    name: str
    unit_id: int | None
    unit: str | None
    contact_name: str
    contact_phone: str
    contact_email: str
    active: bool


class GroupList(BaseModel):
    groups: list[GroupOut]


class GroupsQuery(Strict):
    unit: int | None = Field(
        None, ge=0, le=2**31 - 1, description="Member unit id; 0: standalone groups."
    )
    status: Literal["active", "suspended"] | None = None
    q: str = Field("", max_length=60, description="A piece of the name or contact.")


class GroupIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    unit_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Member unit (a secretary: its own); else none."
    )
    contact_name: str = Field("", max_length=60)
    contact_phone: str = Field("", max_length=30)
    contact_email: str = Field("", max_length=120)


class GroupPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=120)
    unit_id: int | None = Field(None, ge=1, le=2**31 - 1)
    contact_name: str | None = Field(None, max_length=60)
    contact_phone: str | None = Field(None, max_length=30)
    contact_email: str | None = Field(None, max_length=120)
    active: bool | None = Field(None, description="False suspends the group, true reactivates.")


# ------------------------------------------------------------------ plans and pairings


class PlanEntryOut(BaseModel):
    id: int
    period: int = Field(description="Month 1–12, or ISO week.")
    unit_id: int
    unit: str
    kind: ActivityKind
    title: str
    led_on: date | None
    standing: Literal["led", "due", "late", "upcoming"] = Field(
        description="Today in the committee's time zone."
    )


class PlanOut(BaseModel):
    id: int
    year: int
    title: str
    period: Literal["month", "week"]
    status: Literal["draft", "published"]
    entries: list[PlanEntryOut]


class PlanList(BaseModel):
    plans: list[PlanOut]


class PlanIn(Strict):
    year: int = Field(ge=2000, le=2100)
    period: Literal["month", "week"] = "month"
    title: str = Field("", max_length=200)


class PairingOut(BaseModel):
    id: int
    unit_id: int
    unit: str
    partner_unit_id: int | None
    partner_area_id: int | None
    partner: str
    start_on: date
    end_on: date | None
    active: bool
    kind: Literal["one_to_one", "many_to_one"] = Field(
        description="Whether the partner has one unit or several today."
    )


class PairingList(BaseModel):
    pairings: list[PairingOut]


class PairingIn(Strict):
    unit_id: int = Field(ge=1, le=2**31 - 1)
    partner_unit_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Another unit (a community is a unit)…"
    )
    partner_area_id: int | None = Field(None, ge=1, le=2**31 - 1, description="…or a street.")
    start_on: Day
    end_on: Day | None = None
    note: str = Field("", max_length=200)


# ------------------------------------------------------------------ bookings


class Repeat(Strict):
    freq: Literal["daily", "weekly", "biweekly"]
    count: int | None = Field(None, ge=1, le=104)
    until: Day | None = None
    policy: Literal["all_or_nothing", "skip_conflicts"] = "all_or_nothing"


class BookingIn(Strict):
    venue_id: int = Field(ge=1, le=2**31 - 1)
    group_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Default: the booker's group."
    )
    start: Instant
    end: Instant
    units: int = Field(1, ge=1, le=100)
    purpose: str = Field("", max_length=2000)
    headcount: int | None = Field(None, ge=1, le=10000)
    repeat: Repeat | None = None
    caller_name: str | None = Field(
        None,
        max_length=60,
        description="A booking taken by phone: who called (a token with the manage scope of"
        " a unit secretary or the committee admin; with caller_phone).",
    )
    caller_phone: str | None = Field(
        None, max_length=30, description="The caller's phone number (with caller_name)."
    )


class BookingOut(BaseModel):
    id: int
    venue_id: int
    venue: str
    group_id: int
    group: str
    start: Instant
    end: Instant
    units: int
    unit_numbers: list[int]
    status: StatusKey
    status_reason: str
    purpose: str
    headcount: int | None
    series_id: str | None
    hold_expires_at: Instant | None
    entered_by: str | None
    caller_name: str | None = Field(
        None, description="Who called (a phone booking); shown to the venue's unit only."
    )
    caller_phone: str | None = Field(None, description="The caller's phone; as caller_name.")


class BookingList(BaseModel):
    bookings: list[BookingOut]


class OccurrenceOut(BaseModel):
    start: Instant
    end: Instant
    ok: bool
    booking_id: int | None = None
    code: str | None = None
    message: str | None = None


class SeriesOut(BaseModel):
    series_id: str
    bookings: list[BookingOut]
    occurrences: list[OccurrenceOut]


class BookingsQuery(Strict):
    scope: Literal["mine", "unit", "all"] = "mine"
    status: StatusKey | None = None


class DeclineIn(Strict):
    reason: str = Field(min_length=1, max_length=200)


class CancelIn(Strict):
    scope: Literal["one", "following", "series"] = "one"
    reason: str = Field("", max_length=200)


class RescheduleIn(Strict):
    start: Instant
    end: Instant
    units: int | None = Field(None, ge=1, le=100)


class OccupiedOut(BaseModel):
    start: Instant
    end: Instant
    units: int
    booking_id: int | None = None
    group: str | None = None


class WindowOut(BaseModel):
    start: Instant
    end: Instant


class VenueOptionOut(BaseModel):
    venue_id: int
    name: str
    unit: str
    distance_m: float


class AlternativesOut(BaseModel):
    windows: list[WindowOut]
    venues: list[VenueOptionOut]


# ------------------------------------------------------------------ audit


class AuditQuery(Strict):
    actor: str | None = Field(None, max_length=60, description="User name (exact).")
    action: str | None = Field(
        None, max_length=40, description='Action, e.g. "venue.update", or a prefix "booking.".'
    )
    object_type: str | None = Field(None, max_length=40, description='e.g. "venue", "booking".')
    object_id: int | None = Field(None, ge=1, le=2**31 - 1)
    since: Day | None = Field(None, description="First day (local), inclusive.")
    until: Day | None = Field(None, description="Last day (local), inclusive.")
    page: int = Field(1, ge=1, le=100000)
    per_page: int = Field(50, ge=1, le=500)


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_id: int | None
    action: str
    action_label: str
    object_type: str
    object_id: int | None
    changes: dict[str, list[Any]] = Field(description="field: [before, after]")
    details: dict[str, Any]


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    page: int
    per_page: int
    total: int


# ------------------------------------------------------------------ stats


class UtilizationQuery(Strict):
    from_: Day = Field(alias="from", description="First day (local), inclusive.")
    to: Day = Field(description="Last day (local), inclusive; at most 366 days after from.")
    group_by: Literal["venue", "unit", "type", "street"] = "venue"


class UtilizationRow(BaseModel):
    key: str
    name: str
    venues: int
    open_cap_hours: float
    booked_cap_hours: float
    realized_cap_hours: float
    shared_cap_hours: float
    bookings: int
    utilization: float = Field(ge=0, le=1)
    realized_utilization: float = Field(ge=0, le=1)
    sharing_rate: float = Field(ge=0, le=1)
    no_show_rate: float = Field(ge=0, le=1)
    cancellation_rate: float = Field(ge=0, le=1)


class UtilizationOut(BaseModel):
    from_: date = Field(serialization_alias="from")
    to: date
    group_by: str
    total: UtilizationRow
    rows: list[UtilizationRow]


class CoverageQuery(Strict):
    type: VenueTypeKey = VenueType.YOUTH_HOME
    radius_km: float = Field(1.0, gt=0, le=20)


class StreetCoverageOut(BaseModel):
    name: str
    area_km2: float
    covered_km2: float
    share: float = Field(ge=0, le=1)
    venues: int


class CoverageOut(BaseModel):
    type: VenueTypeKey
    radius_km: float
    crs: str
    share: float = Field(ge=0, le=1)
    area_km2: float
    covered_km2: float
    streets: list[StreetCoverageOut]
    uncovered_streets: list[str]


ErrorBody.model_rebuild()


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


# ------------------------------------------------------------------ units' applications


class ApplicationsQuery(Strict):
    status: Literal["pending", "admitted", "declined"] | None = None


class ApplicationOut(BaseModel):
    id: int
    name: str
    kind: str
    address: str
    lon: float
    lat: float
    contact_name: str
    phone: str
    email: str
    venues_plan: str
    submitted_at: AwareDatetime
    status: Literal["pending", "admitted", "declined"]
    decided_at: AwareDatetime | None
    reason: str
    unit_id: int | None
    account_id: int | None = Field(description="The secretary account admission created.")


class ApplicationList(BaseModel):
    applications: list[ApplicationOut]


class AdmitIn(Strict):
    username: str | None = Field(
        None, min_length=3, max_length=60, description="Default: from the contact's e-mail."
    )


class AccountOut(BaseModel):
    id: int
    username: str
    role: str
    display_name: str
    unit_id: int | None


class AdmittedOut(BaseModel):
    application: ApplicationOut
    account: AccountOut
    set_password_url: str = Field(description="One-time link (72 h, once): give it to the contact.")
    expires_at: AwareDatetime


class DeclineApplicationIn(Strict):
    reason: str = Field(min_length=1, max_length=500)
