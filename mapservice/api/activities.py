"""The /api/v1 activity endpoints (issue 20): list and create activities, one activity and its
changes (cancel: ``status=cancelled`` with a reason), sign up and withdraw."""

from __future__ import annotations

import json
from typing import Any

from mapservice.api import activity_schemas as s
from mapservice.api.common import READ_ERRORS, WRITE_ERRORS
from mapservice.api.framework import api_user, db, endpoint
from mapservice.core.i18n import N_, _
from mapservice.core.vocab import ActivityStatus
from mapservice.models import Activity, SignUp, User
from mapservice.operations import activities as ops
from mapservice.operations import signups
from mapservice.policy.activities import get_activity as load_activity
from mapservice.web.database import end_read_phase


def activity_out(a: Activity, counted: tuple[int, int]) -> s.ActivityOut:
    site = None
    if a.venue_id is None and a.site_lon is not None and a.site_lat is not None:
        site = s.SiteOut(
            lon=a.site_lon,
            lat=a.site_lat,
            name=a.site_name,
            street=a.site_street,
            area=json.loads(a.site_area) if a.site_area else None,
        )
    return s.ActivityOut(
        id=a.id,
        title=a.title,
        kind=a.kind,  # type: ignore[arg-type]
        status=signups.shown_status(a),  # type: ignore[arg-type]
        lead_unit_id=a.lead_unit_id,
        lead_unit=a.lead_unit.name,
        cohost_ids=[u.id for u in a.cohosts],
        start=a.start_at,
        end=a.end_at,
        signup_deadline=a.signup_deadline,
        description=a.description,
        capacity=a.capacity,
        confirmed_headcount=counted[0],
        waitlisted_headcount=counted[1],
        venue_id=a.venue_id,
        booking_id=a.booking_id,
        site=site,
        cancel_reason=a.cancel_reason,
        plan_entry_id=a.plan_entry_id,
    )


def _one(a: Activity) -> s.ActivityOut:
    return activity_out(a, signups.counts(db(), [a.id])[a.id])


def _user() -> User:
    user = api_user()
    assert user is not None  # every activity endpoint has a scope: a token was required
    return user


def _site(site: s.SiteIn | None) -> dict[str, Any]:
    if site is None:
        return {}
    return {
        "site_lon": site.lon,
        "site_lat": site.lat,
        "site_area": site.area,
        "site_name": site.name,
        "site_street": site.street,
    }


@endpoint(
    "GET",
    "/activities",
    summary=N_("The committee's activities (filters: month, kind, open for sign-up)"),
    tag="activities",
    query=s.ActivitiesQuery,
    response=s.ActivityList,
    scope="read",
    errors=READ_ERRORS,
)
def list_activities(query: s.ActivitiesQuery) -> s.ActivityList:
    found = ops.list_activities(
        db(), _user(), month=query.month or "", kind=query.kind or "", open_only=query.open
    )
    counted = signups.counts(db(), [a.id for a in found])
    return s.ActivityList(activities=[activity_out(a, counted[a.id]) for a in found])


@endpoint(
    "POST",
    "/activities",
    summary=N_("Create an activity at a venue (booked at once) or a site (its lead unit, admin)"),
    tag="activities",
    body=s.ActivityIn,
    response=s.ActivityOut,
    status=201,
    scope="manage",
    errors=WRITE_ERRORS,
)
def create_activity(body: s.ActivityIn) -> s.ActivityOut:
    a = ops.create_activity(
        db(),
        _user(),
        title=body.title,
        kind=body.kind.value,
        start=body.start,
        end=body.end,
        capacity=body.capacity,
        signup_deadline=body.signup_deadline,
        description=body.description,
        venue_id=body.venue_id,
        group_id=body.group_id,
        lead_unit_id=body.lead_unit_id,
        cohost_ids=body.cohost_ids,
        publish=body.publish,
        **_site(body.site),
    )
    return _one(a)


@endpoint(
    "GET",
    "/activities/{activity_id}",
    summary=N_("One activity, with its confirmed and waitlisted headcounts"),
    tag="activities",
    response=s.ActivityOut,
    scope="read",
    errors=READ_ERRORS,
)
def get_activity(activity_id: int) -> s.ActivityOut:
    return _one(load_activity(db(), _user(), activity_id))


@endpoint(
    "PATCH",
    "/activities/{activity_id}",
    summary=N_("Change, publish, close or cancel an activity (its lead unit, admin)"),
    tag="activities",
    body=s.ActivityPatch,
    response=s.ActivityOut,
    scope="manage",
    errors=WRITE_ERRORS,
)
def patch_activity(activity_id: int, body: s.ActivityPatch) -> s.ActivityOut:
    user = _user()
    changes = body.model_dump(exclude_unset=True, exclude={"site", "cancel_reason"})
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes.get("status") == ActivityStatus.CANCELLED.value:
        return _one(ops.cancel_activity(db(), user, activity_id, body.cancel_reason))
    changes.update(_site(body.site))
    return _one(ops.update_activity(db(), user, activity_id, changes))


def signup_out(signup: SignUp) -> s.SignUpOut:
    confirmed = signup.state == "confirmed"
    return s.SignUpOut(
        id=signup.id,
        activity_id=signup.activity_id,
        unit_id=signup.unit_id,
        group_id=signup.group_id,
        headcount=signup.headcount,
        state=signup.state,  # type: ignore[arg-type]
        seq=signup.seq,
        note=signup.note,
        attended=signup.attended,
        message=_("Confirmed.") if confirmed else _("Waitlisted: promoted when a place frees."),
    )


@endpoint(
    "POST",
    "/activities/{activity_id}/signups",
    summary=N_("Sign up with a headcount: confirmed, or waitlisted past the capacity"),
    tag="activities",
    body=s.SignUpIn,
    response=s.SignUpOut,
    status=201,
    scope="book",
    errors=WRITE_ERRORS,
)
def create_signup(activity_id: int, body: s.SignUpIn) -> s.SignUpOut:
    end_read_phase()  # SQLite: the token's check read apart, the write lock held only to write
    return signup_out(
        signups.sign_up(
            db(), _user(), activity_id, body.headcount, group_id=body.group_id, note=body.note
        )
    )


@endpoint(
    "DELETE",
    "/activities/{activity_id}/signups/{signup_id}",
    summary=N_("Withdraw a sign-up (before the deadline); the waitlist moves up"),
    tag="activities",
    status=204,
    scope="book",
    errors=WRITE_ERRORS,
)
def delete_signup(activity_id: int, signup_id: int) -> None:
    end_read_phase()
    signups.withdraw(db(), _user(), activity_id, signup_id)
