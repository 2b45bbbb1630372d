"""The /api/v1 endpoints of units' applications to join (成员准入), for the committee admin:
the list, admit (the new secretary account and its set-password link), decline with a
reason. The rules are ``operations/applications.py``'s, as on ``/units/applications``."""

from __future__ import annotations

from flask import url_for

from mapservice.api import schemas as s
from mapservice.api.common import READ_ERRORS, WRITE_ERRORS, utcnow
from mapservice.api.framework import api_user, db, endpoint
from mapservice.core.i18n import N_
from mapservice.models import UnitApplication
from mapservice.operations import applications as ops
from mapservice.operations.accounts import LINK_LIFETIME


def application_out(a: UnitApplication) -> s.ApplicationOut:
    return s.ApplicationOut.model_validate(
        {field: getattr(a, field) for field in s.ApplicationOut.model_fields}
    )


@endpoint(
    "GET",
    "/applications",
    summary=N_("Units' applications to join the committee (committee admin)"),
    tag="applications",
    query=s.ApplicationsQuery,
    response=s.ApplicationList,
    scope="manage",
    errors=READ_ERRORS,
)
def list_applications(query: s.ApplicationsQuery) -> s.ApplicationList:
    found = ops.list_applications(db(), api_user(), query.status)
    return s.ApplicationList(applications=[application_out(a) for a in found])


@endpoint(
    "POST",
    "/applications/{application_id}/admit",
    summary=N_("Admit a unit: its contact's secretary account and set-password link"),
    tag="applications",
    body=s.AdmitIn,
    response=s.AdmittedOut,
    status=201,
    scope="manage",
    errors=WRITE_ERRORS,
)
def admit(application_id: int, body: s.AdmitIn) -> s.AdmittedOut:
    user = api_user()
    assert user is not None  # the endpoint has a scope: a token was required
    now = utcnow()
    application, account, secret = ops.admit(
        db(), user, application_id, username=body.username, now=now
    )
    return s.AdmittedOut(
        application=application_out(application),
        account=s.AccountOut(
            id=account.id,
            username=account.username,
            role=account.role,
            display_name=account.display_name,
            unit_id=account.unit_id,
        ),
        set_password_url=url_for("password_links.set_password", secret=secret, _external=True),
        expires_at=now + LINK_LIFETIME,
    )


@endpoint(
    "POST",
    "/applications/{application_id}/decline",
    summary=N_("Decline an application with a reason"),
    tag="applications",
    body=s.DeclineApplicationIn,
    response=s.ApplicationOut,
    scope="manage",
    errors=WRITE_ERRORS,
)
def decline(application_id: int, body: s.DeclineApplicationIn) -> s.ApplicationOut:
    user = api_user()
    assert user is not None
    return application_out(
        ops.decline(db(), user, application_id, reason=body.reason, now=utcnow())
    )
