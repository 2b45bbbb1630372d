"""Who may see, book and manage what: the one access policy.

Below the booking engine, the stats, the map builders and the edges, above the models: every
layer that asks "may this user…" asks here. For each object kind the Python predicate (on a
loaded object) and the SQL condition (for the one scoped query that loads it) live side by
side in one module, so the two forms of a rule are read and changed together:

- :mod:`.committees` — the committee's admin and staff;
- :mod:`.units` — which units one sees and manages;
- :mod:`.venues` — which venues one sees, edits and runs;
- :mod:`.groups` — for which groups one acts, and which groups may book a venue;
- :mod:`.bookings` — which bookings one manages and whose names one may see.

What a user may not see is 404, what they may see but not change is 403.
"""

from __future__ import annotations

from mapservice.policy.bookings import (
    manageable_bookings,
    may_act_for_group_self,
    may_see_details,
)
from mapservice.policy.committees import is_staff_of, require_admin
from mapservice.policy.groups import (
    GroupKeys,
    active_with_unit,
    bookable_by_rule,
    group_is_active,
    group_may_book,
    may_act_for_group,
)
from mapservice.policy.units import get_unit, units_managed, units_visible
from mapservice.policy.venues import (
    VenueKeys,
    get_venue,
    is_owner,
    owned_venues_condition,
    venue_editable,
    venue_public,
    venue_visibility_key,
    venue_visible,
    visible_venues,
)

__all__ = [
    "GroupKeys",
    "VenueKeys",
    "active_with_unit",
    "bookable_by_rule",
    "get_unit",
    "get_venue",
    "group_is_active",
    "group_may_book",
    "is_owner",
    "is_staff_of",
    "manageable_bookings",
    "may_act_for_group",
    "may_act_for_group_self",
    "may_see_details",
    "owned_venues_condition",
    "require_admin",
    "units_managed",
    "units_visible",
    "venue_editable",
    "venue_public",
    "venue_visibility_key",
    "venue_visible",
    "visible_venues",
]
