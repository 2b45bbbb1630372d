"""The API's schemas of activities and sign-ups (issue 20), beside :mod:`mapservice.api.schemas`
(the same base classes; the OpenAPI document takes them from the endpoints)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from mapservice.api.schemas import Instant, Strict
from mapservice.core.activities import MAX_CAPACITY, MAX_DESCRIPTION, MAX_NOTE, MAX_TITLE
from mapservice.core.vocab import ActivityKind, ActivityStatus, SignUpState


class SiteIn(Strict):
    """A place without booking: a point, or a drawn area (a GeoJSON polygon, WGS-84)."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    name: str = Field("", max_length=120)
    street: str = Field("", max_length=120, description="The community or street.")
    area: dict[str, Any] | None = Field(None, description="A GeoJSON Polygon (optional).")


class ActivityIn(Strict):
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    kind: ActivityKind
    start: Instant
    end: Instant
    capacity: int = Field(ge=1, le=MAX_CAPACITY, description="People.")
    signup_deadline: Instant | None = Field(None, description="Default: the start.")
    description: str = Field("", max_length=MAX_DESCRIPTION)
    venue_id: int | None = Field(None, ge=1, le=2**31 - 1)
    group_id: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="The group the venue's booking is for. Default: the lead unit's first.",
    )
    site: SiteIn | None = None
    lead_unit_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Default: the secretary's unit."
    )
    cohost_ids: list[int] = Field(default_factory=list, max_length=50)
    publish: bool = Field(True, description="Open for sign-up at once; false: a draft.")

    @model_validator(mode="after")
    def _one_place(self) -> ActivityIn:
        if (self.venue_id is None) == (self.site is None):
            raise ValueError("give either venue_id or site")
        return self


class ActivityPatch(Strict):
    title: str | None = Field(None, min_length=1, max_length=MAX_TITLE)
    kind: ActivityKind | None = None
    start: Instant | None = None
    end: Instant | None = None
    capacity: int | None = Field(None, ge=1, le=MAX_CAPACITY)
    signup_deadline: Instant | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    site: SiteIn | None = None
    status: Literal["open", "closed", "done", "cancelled"] | None = Field(
        None, description="Publish a draft, close sign-up, mark done, or cancel (with a reason)."
    )
    cancel_reason: str = Field("", max_length=200)


class SiteOut(BaseModel):
    lon: float
    lat: float
    name: str
    street: str
    area: dict[str, Any] | None


class ActivityOut(BaseModel):
    id: int
    title: str
    kind: ActivityKind
    status: ActivityStatus
    lead_unit_id: int
    lead_unit: str
    cohost_ids: list[int]
    start: AwareDatetime
    end: AwareDatetime
    signup_deadline: AwareDatetime
    description: str
    capacity: int
    confirmed_headcount: int
    waitlisted_headcount: int
    venue_id: int | None
    booking_id: int | None
    site: SiteOut | None
    cancel_reason: str
    plan_entry_id: int | None


class ActivityList(BaseModel):
    activities: list[ActivityOut]


class ActivitiesQuery(Strict):
    month: str | None = Field(
        None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (committee time)."
    )
    kind: ActivityKind | None = None
    open: bool = Field(False, description="Only those open for sign-up now.")


class SignUpIn(Strict):
    headcount: int = Field(ge=1, le=MAX_CAPACITY)
    group_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Default: a booker's group, a secretary's unit."
    )
    note: str = Field("", max_length=MAX_NOTE)


class SignUpOut(BaseModel):
    id: int
    activity_id: int
    unit_id: int | None
    group_id: int | None
    headcount: int
    state: SignUpState
    seq: int = Field(description="Arrival order within the activity.")
    note: str
    attended: int | None
    message: str
