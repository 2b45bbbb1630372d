"""The /api/v1 group endpoints: list, create, one group, change (suspend, reactivate)."""

from __future__ import annotations

from mapservice import policy
from mapservice.api import schemas as s
from mapservice.api.common import READ_ERRORS, WRITE_ERRORS
from mapservice.api.framework import ApiError, api_user, db, endpoint
from mapservice.core.i18n import N_, _
from mapservice.models import Group, User
from mapservice.operations import groups as ops


def group_out(group: Group) -> s.GroupOut:
    return s.GroupOut(
        id=group.id,
        name=group.name,
        unit_id=group.unit_id,
        unit=group.unit.name if group.unit else None,
        contact_name=group.contact_name,
        contact_phone=group.contact_phone,
        contact_email=group.contact_email,
        active=group.active,
    )


def _user() -> User:
    user = api_user()
    assert user is not None  # every group endpoint has a scope: a token was required
    return user


@endpoint(
    "GET",
    "/groups",
    summary=N_("The groups one acts for (a booker its own, a secretary its unit's)"),
    tag="groups",
    query=s.GroupsQuery,
    response=s.GroupList,
    scope="read",
    errors=READ_ERRORS,
)
def list_groups(query: s.GroupsQuery) -> s.GroupList:
    found = ops.list_groups(
        db(), _user(), unit_id=query.unit, status=query.status or "", text=query.q
    )
    return s.GroupList(groups=[group_out(g) for g in found])


@endpoint(
    "POST",
    "/groups",
    summary=N_("Create a group (committee admin, or a unit secretary for its unit)"),
    tag="groups",
    body=s.GroupIn,
    response=s.GroupOut,
    status=201,
    scope="manage",
    errors=WRITE_ERRORS,
)
def create_group(body: s.GroupIn) -> s.GroupOut:
    return group_out(ops.save_group(db(), _user(), **body.model_dump()))


@endpoint(
    "GET",
    "/groups/{group_id}",
    summary=N_("One group"),
    tag="groups",
    response=s.GroupOut,
    scope="read",
    errors=READ_ERRORS,
)
def get_group(group_id: int) -> s.GroupOut:
    return group_out(policy.get_group(db(), _user(), group_id))


@endpoint(
    "PATCH",
    "/groups/{group_id}",
    summary=N_("Change, suspend or reactivate a group (those who manage it)"),
    tag="groups",
    body=s.GroupPatch,
    response=s.GroupOut,
    scope="manage",
    errors=WRITE_ERRORS,
)
def patch_group(group_id: int, body: s.GroupPatch) -> s.GroupOut:
    user = _user()
    group = policy.get_group(db(), user, group_id, edit=True)
    changes = body.model_dump(exclude_unset=True)
    active = changes.pop("active", None)
    nulls = {k: _("Null is not allowed.") for k, v in changes.items() if v is None}
    nulls.pop("unit_id", None)  # none: a standalone group
    if nulls:
        raise ApiError(422, "invalid", _("Some fields are not valid."), nulls)
    if changes:
        values = {
            "name": group.name,
            "unit_id": group.unit_id,
            "contact_name": group.contact_name,
            "contact_phone": group.contact_phone,
            "contact_email": group.contact_email,
            **changes,
        }
        group = ops.save_group(db(), user, group=group, **values)
    if active is not None:
        group = ops.set_group_active(db(), user, group.id, bool(active))
    return group_out(group)
