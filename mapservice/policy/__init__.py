"""Who may see, book and manage what: the one access policy.

Below the booking engine, the stats, the map builders and the edges, above the models: every
layer that asks "may this user…" asks here. For each object kind the Python predicate (on a
loaded object, ``can_*``) and the SQL condition (for the one scoped query that loads it,
``<objects>_<verb>_by(user)``) live side by side in one module, so the two forms of a rule
are read and changed together:

============  ==============================================  ==================================
kind          predicate                                       SQL condition
============  ==============================================  ==================================
committee     ``can_admin_committee``, ``is_committee_staff``  —
unit          ``can_see_unit``, ``can_manage_unit``           ``units_seen_by``,
                                                              ``units_managed_by``
application   ``can_decide_application``                      ``applications_decided_by``
venue         ``can_see_venue``, ``can_run_venue``,           ``venues_seen_by``,
              ``can_edit_venue``, ``can_book_venue``          ``venues_run_by``,
                                                              ``venues_edited_by``,
                                                              ``venues_bookable_by``
group         ``can_act_for_group``, ``can_group_book_venue``,  ``groups_acted_for_by``,
              ``can_manage_group``                            ``groups_managed_by``
user          ``can_manage_user``                             ``users_managed_by``
booking       ``can_manage_booking``, ``can_see_booking_group``  ``bookings_managed_by``,
                                                              ``bookings_of`` ("my bookings")
token         ``can_use_token``, ``token_allows`` (scope)     ``tokens_usable``
audit entry   ``can_see_audit_entry``, ``may_read_audit``     ``audit_entries_seen_by``
============  ==============================================  ==================================

Venues that are not public (unpublished, retired, or of a unit applying or suspended) are
seen only by those who run them — the committee's admin and the venue's unit secretaries —
and booked by nobody; see :mod:`.venues`.

What a user may not see is 404, what they may see but not change is 403.
"""

from __future__ import annotations

from mapservice.policy.audit import audit_entries_seen_by, can_see_audit_entry, may_read_audit
from mapservice.policy.bookings import (
    bookings_managed_by,
    bookings_of,
    can_manage_booking,
    can_see_booking_group,
    is_own_group_booking,
)
from mapservice.policy.committees import (
    can_admin_committee,
    is_committee_staff,
    require_committee_admin,
)
from mapservice.policy.groups import (
    GroupKeys,
    active_with_unit,
    bookable_by_rule,
    can_act_for_group,
    can_group_book_venue,
    can_manage_group,
    get_group,
    group_is_active,
    groups_acted_for_by,
    groups_managed_by,
    require_group_manager,
)
from mapservice.policy.tokens import can_use_token, token_allows, tokens_usable
from mapservice.policy.units import (
    applications_decided_by,
    can_decide_application,
    can_manage_unit,
    can_see_unit,
    get_application,
    get_unit,
    units_managed_by,
    units_seen_by,
)
from mapservice.policy.users import can_manage_user, get_managed_user, users_managed_by
from mapservice.policy.venues import (
    RunnerKeys,
    VenueKeys,
    can_book_venue,
    can_edit_venue,
    can_run_venue,
    can_see_venue,
    get_venue,
    select_venues_seen_by,
    venue_is_open,
    venues_bookable_by,
    venues_edited_by,
    venues_public,
    venues_run_by,
    venues_seen_by,
    venues_seen_by_key,
)

__all__ = [
    "users_managed_by",
    "get_managed_user",
    "can_manage_user",
    "require_group_manager",
    "groups_managed_by",
    "get_group",
    "can_manage_group",
    "may_read_audit",
    "GroupKeys",
    "RunnerKeys",
    "VenueKeys",
    "active_with_unit",
    "audit_entries_seen_by",
    "bookable_by_rule",
    "bookings_managed_by",
    "can_see_audit_entry",
    "bookings_of",
    "can_act_for_group",
    "can_admin_committee",
    "can_book_venue",
    "can_edit_venue",
    "can_group_book_venue",
    "can_manage_booking",
    "can_manage_unit",
    "can_run_venue",
    "can_see_booking_group",
    "can_see_unit",
    "can_see_venue",
    "can_use_token",
    "get_unit",
    "get_application",
    "can_decide_application",
    "applications_decided_by",
    "get_venue",
    "group_is_active",
    "groups_acted_for_by",
    "is_committee_staff",
    "is_own_group_booking",
    "require_committee_admin",
    "select_venues_seen_by",
    "token_allows",
    "tokens_usable",
    "units_managed_by",
    "units_seen_by",
    "venue_is_open",
    "venues_bookable_by",
    "venues_edited_by",
    "venues_public",
    "venues_run_by",
    "venues_seen_by",
    "venues_seen_by_key",
]
