"""All models, imported in dependency order so the mapper registry is complete."""

from mapservice.models.activities import Activity, SignUp, activity_cohosts
from mapservice.models.applications import UnitApplication
from mapservice.models.audit import AuditEntry
from mapservice.models.bookings import Booking, BookingAllocation, FeedToken, Notification
from mapservice.models.committees import Area, Committee
from mapservice.models.jobs import JobLease, JobRun
from mapservice.models.links import PasswordLink
from mapservice.models.plans import Pairing, Plan, PlanEntry, UnitPlanPreference
from mapservice.models.search import HeldChange, SearchEpoch
from mapservice.models.security import LoginAttempt, LoginSession
from mapservice.models.stats import (
    venue_day_stale,
    venue_day_usage,
    venue_month_days,
    venue_month_usage,
    venue_year_usage,
)
from mapservice.models.tokens import ApiToken
from mapservice.models.units import Group, Unit
from mapservice.models.users import User, user_groups
from mapservice.models.venues import Closure, OpeningHours, Venue, venue_paired_units

__all__ = [
    "Activity",
    "SignUp",
    "activity_cohosts",
    "ApiToken",
    "Area",
    "AuditEntry",
    "Booking",
    "BookingAllocation",
    "FeedToken",
    "Notification",
    "Closure",
    "Committee",
    "Group",
    "JobLease",
    "JobRun",
    "LoginAttempt",
    "LoginSession",
    "OpeningHours",
    "PasswordLink",
    "HeldChange",
    "SearchEpoch",
    "Unit",
    "UnitApplication",
    "User",
    "Venue",
    "venue_paired_units",
    "user_groups",
    "Pairing",
    "Plan",
    "PlanEntry",
    "UnitPlanPreference",
    "venue_day_stale",
    "venue_day_usage",
    "venue_month_days",
    "venue_month_usage",
    "venue_year_usage",
]
