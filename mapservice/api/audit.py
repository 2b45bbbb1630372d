"""The /api/v1 audit log endpoint: the entries the token's user may read
(``policy/audit.py``), filtered and paginated, newest first."""

from __future__ import annotations

from mapservice.api import schemas as s
from mapservice.api.common import READ_ERRORS
from mapservice.api.framework import api_user, db, endpoint
from mapservice.core.i18n import N_
from mapservice.operations import audit as ops


@endpoint(
    "GET",
    "/audit",
    summary=N_("The audit log: who changed what, when (committee admin, unit secretary)"),
    tag="audit",
    query=s.AuditQuery,
    response=s.AuditPageOut,
    scope="manage",
    errors=READ_ERRORS,
)
def list_audit(query: s.AuditQuery) -> s.AuditPageOut:
    args = {k: "" if v is None else str(v) for k, v in query.model_dump().items()}
    page = ops.audit_page(db(), api_user(), ops.parse_filter(args), per_page=query.per_page)
    return s.AuditPageOut(
        entries=[
            s.AuditEntryOut(
                id=line.entry.id,
                at=line.at,
                actor=line.entry.actor_name,
                actor_id=line.entry.actor_id,
                action=line.entry.action,
                action_label=line.action,
                object_type=line.entry.object_type,
                object_id=line.entry.object_id,
                changes=line.entry.changed(),
                details=line.details,
            )
            for line in page.lines
        ],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
    )
