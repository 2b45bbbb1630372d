"""The /api/v1 statistics endpoints: the dashboard's figures as JSON."""

from __future__ import annotations

from mapservice.api import schemas as s
from mapservice.api.common import READ_ERRORS
from mapservice.api.framework import ApiError, api_user, db, endpoint
from mapservice.core.i18n import N_, _
from mapservice.models import User
from mapservice.operations.utilization import stats_scope, utilization_table

# ------------------------------------------------------------------ stats


@endpoint(
    "GET",
    "/stats/utilization",
    summary=N_("Utilization and sharing, grouped"),
    tag="stats",
    query=s.UtilizationQuery,
    response=s.UtilizationOut,
    scope="read",
    errors=READ_ERRORS,
    writes=True,  # recounts the stale days of the aggregates first (stats.aggregates.refresh)
)
def stats_utilization(query: s.UtilizationQuery) -> s.UtilizationOut:
    """The same figures as the dashboard (docs/stats.md), for a custom period of local days
    counted up to now, as the dashboard counts: a booking still to come is not use."""
    if query.to < query.from_ or (query.to - query.from_).days > 366:
        raise ApiError(
            422,
            "invalid",
            _("Some fields are not valid."),
            {"to": _("From 1 to 366 days after from.")},
        )
    table = utilization_table(db(), _user(), query.from_, query.to, query.group_by)
    return s.UtilizationOut(
        from_=query.from_,
        to=query.to,
        group_by=query.group_by,
        total=s.UtilizationRow.model_validate(table.total),
        rows=[s.UtilizationRow.model_validate(row) for row in table.rows],
    )


@endpoint(
    "GET",
    "/stats/coverage",
    summary=N_("Share of each street within reach of a venue type"),
    tag="stats",
    query=s.CoverageQuery,
    response=s.CoverageOut,
    scope="read",
    errors=READ_ERRORS,
)
def stats_coverage(query: s.CoverageQuery) -> s.CoverageOut:
    from mapservice.stats.report import coverage_for

    cov = coverage_for(db(), stats_scope(_user()), query.type, query.radius_km * 1000)
    return s.CoverageOut(
        type=query.type,
        radius_km=query.radius_km,
        crs=cov.crs,
        share=min(1.0, cov.share),
        area_km2=round(cov.area_km2, 4),
        covered_km2=round(cov.covered_km2, 4),
        streets=[
            s.StreetCoverageOut(
                name=st.name,
                area_km2=round(st.area_km2, 4),
                covered_km2=round(st.covered_km2, 4),
                share=min(1.0, max(0.0, st.share)),
                venues=st.venues,
            )
            for st in cov.streets
        ],
        uncovered_streets=[st.name for st in cov.uncovered],
    )


def _user() -> User:
    user = api_user()
    assert user is not None  # every stats endpoint needs a token (scope "read")
    return user
