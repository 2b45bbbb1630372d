"""Every place a user can put text into the service, found from the code, and where each ends up.

The sources are discovered, not typed: the WTForms forms of ``mapservice.web`` (every
``FlaskForm`` subclass and its fields), the raw ``request.form`` / ``request.values`` reads of the
routes, the API's request schemas (``api/schemas.py``, ``api/activity_schemas.py``) and the
venue import's columns (``core/venue_spec.py``). A field is *text* when a user can type any
characters into it (a WTForms ``StringField`` or subclass, a pydantic ``str`` or JSON object, an
import column of kind text, any raw form value); numbers, dates, booleans, choices and files
are parsed into their type and are not.

Each text source must be named in exactly one of :data:`FREE_TEXT` (stored, and shown: the XSS
world puts every payload into the attribute it names), :data:`NOT_FREE_TEXT` (with the reason it
cannot hold markup: a pattern, a parser, an id) or :data:`NEVER_SHOWN` (with the reason no page
or file shows it). ``tests/test_xss_everywhere.py`` fails on a source in none of them (a new field
nobody thought about) and on a name in them that no longer exists.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
import typing
from pathlib import Path
from typing import Any

#: The payloads: each would call ``xss(n)`` if it ran (``n`` its number), each without white
#: space so that every field (a user name too) can hold it, each at most 32 characters so that
#: every field (60 characters and up) holds it with a short prefix.
PAYLOADS: tuple[str, ...] = (
    "<script>xss(1)</script>",  # a script element
    "\"'><img/src='x'/onerror=xss(2)>",  # breaks out of a double- or single-quoted attribute
    "javascript:xss(3)",  # a URL that runs when followed
    "</script><script>xss(4)</script>",  # ends a script it is placed in (JSON-in-script)
    "{{7*1111111}}",  # a template expression: 7777777 if a template evaluated it
    "${xss(6)}`);xss(6)//",  # a JS template-literal substitution; ends a backtick string (issue 18)
    "<svg/onload=xss(7)>",  # SVG's onload
)
#: What the template payload shows if something evaluated it.
EVALUATED = "7777777"

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "mapservice" / "web"

# ------------------------------------------------------------------ discovery


def form_fields() -> dict[str, bool]:
    """``form:<Form>.<field>`` of every WTForms form of the app → whether it is text."""
    from flask_wtf import FlaskForm
    from wtforms import StringField
    from wtforms.fields.core import UnboundField

    import mapservice.web

    for info in pkgutil.walk_packages(mapservice.web.__path__, "mapservice.web."):
        importlib.import_module(info.name)
    found: dict[str, bool] = {}
    todo = list(FlaskForm.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if not cls.__module__.startswith("mapservice."):
            continue
        for name in dir(cls):
            value = getattr(cls, name, None)
            if isinstance(value, UnboundField):
                found[f"form:{cls.__name__}.{name}"] = issubclass(value.field_class, StringField)
    return found


RAW_READ = re.compile(
    r"(?:request\.form|request\.values|\bform|\bsrc)\.get(?:list)?\(\s*\"([\w-]+)\""
)
RAW_LOOP = re.compile(r"request\.(?:form|values)\.(?:items|keys|values|listvalues|to_dict|lists)\(")


def raw_form_fields() -> dict[str, bool]:
    """``raw:<module>.<name>`` of every value a route reads from the posted form itself (not
    through a form class), and ``raw:<module>.*`` for a route that walks all of them. All are
    text: nothing but the code after the read says otherwise."""
    found: dict[str, bool] = {}
    for path in sorted(WEB.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        module = path.relative_to(WEB).with_suffix("").as_posix()
        if not re.search(r"request\.(form|values)|\bsrc = request", source):
            continue
        for name in RAW_READ.findall(source):
            found[f"raw:{module}.{name}"] = True
        if RAW_LOOP.search(source):
            found[f"raw:{module}.*"] = True
    return found


def _is_text(annotation: Any) -> bool:
    """Whether a pydantic annotation lets any text through: plain ``str``, or a JSON object."""
    if annotation is str or annotation is dict or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is dict:
        return True
    if origin is typing.Literal:
        return False
    if origin is typing.Annotated:
        return _is_text(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list):
        return any(_is_text(a) for a in typing.get_args(annotation))
    return False


def api_fields() -> dict[str, bool]:
    """``api:<Schema>.<field>`` of every request schema (``Strict`` subclass) → text?"""
    from mapservice.api import activity_schemas, schemas

    found: dict[str, bool] = {}
    for module in (schemas, activity_schemas):
        for cls in vars(module).values():
            if (
                isinstance(cls, type)
                and issubclass(cls, schemas.Strict)
                and cls is not schemas.Strict
                and cls.__module__ == module.__name__
            ):
                for name, info in cls.model_fields.items():
                    found[f"api:{cls.__name__}.{name}"] = _is_text(info.annotation)
    return found


def import_fields() -> dict[str, bool]:
    """``import:<column>`` of the venue import file → text?"""
    from mapservice.core import venue_spec

    return {f"import:{f.name}": f.kind == "text" for f in venue_spec.on("import")}


#: Text that reaches the service other than through a field: the browser's User-Agent, kept
#: with each log-in and shown on the account page's list of sessions.
OTHER_SOURCES = {"header:User-Agent": True}


def all_sources() -> dict[str, bool]:
    """Every source found → whether it is text."""
    return {
        **form_fields(),
        **raw_form_fields(),
        **api_fields(),
        **import_fields(),
        **OTHER_SOURCES,
    }


def text_sources() -> set[str]:
    return {k for k, text in all_sources().items() if text}


# ------------------------------------------------------------------ classification

#: Stored and shown: source → the ``Model.attribute`` it is stored in. The XSS world holds every
#: payload in every one of these attributes.
FREE_TEXT: dict[str, str] = {
    # venues: the form, the API and the import file
    **{
        f"{src}.{f}": f"Venue.{f}"
        for src in ("form:VenueForm", "api:VenueIn", "api:VenuePatch")
        for f in ("name", "address", "facilities")
    },  # fmt: skip
    "import:name": "Venue.name",
    "import:address": "Venue.address",
    "import:facilities": "Venue.facilities",
    "form:ClosureForm.reason": "Closure.reason",
    # units, groups, users
    "form:UnitForm.name": "Unit.name",
    "form:UnitForm.name_en": "Unit.name_en",
    "form:UnitForm.secretary": "Unit.secretary",
    "form:GroupForm.name": "Group.name",
    "form:GroupForm.contact_name": "Group.contact_name",
    "form:GroupForm.contact_email": "Group.contact_email",
    "api:GroupIn.name": "Group.name",
    "api:GroupIn.contact_name": "Group.contact_name",
    "api:GroupIn.contact_email": "Group.contact_email",
    "api:GroupPatch.name": "Group.name",
    "api:GroupPatch.contact_name": "Group.contact_name",
    "api:GroupPatch.contact_email": "Group.contact_email",
    "form:UserForm.username": "User.username",
    "form:UserForm.display_name": "User.display_name",
    "form:UserForm.email": "User.email",
    "form:ContactForm.display_name": "User.display_name",
    "form:ContactForm.email": "User.email",
    "form:AdmitForm.username": "User.username",
    "api:AdmitIn.username": "User.username",
    "raw:account.name": "ApiToken.name",
    "header:User-Agent": "LoginSession.user_agent",
    # bookings
    "form:BookingForm.purpose": "Booking.purpose",
    "api:BookingIn.purpose": "Booking.purpose",
    "form:ReasonForm.reason": "Booking.status_reason",
    "api:DeclineIn.reason": "Booking.status_reason",
    "api:CancelIn.reason": "Booking.status_reason",
    "raw:bookings/phone.caller_name": "Booking.caller_name",
    "api:BookingIn.caller_name": "Booking.caller_name",
    "raw:bookings/phone.purpose": "Booking.purpose",
    # activities and sign-ups
    "form:ActivityForm.title": "Activity.title",
    "form:ActivityForm.description": "Activity.description",
    "form:ActivityForm.site_name": "Activity.site_name",
    "form:ActivityForm.site_street": "Activity.site_street",
    "form:CancelActivityForm.reason": "Activity.cancel_reason",
    "api:ActivityIn.title": "Activity.title",
    "api:ActivityIn.description": "Activity.description",
    "api:ActivityPatch.title": "Activity.title",
    "api:ActivityPatch.description": "Activity.description",
    "api:ActivityPatch.cancel_reason": "Activity.cancel_reason",
    "api:SiteIn.name": "Activity.site_name",
    "api:SiteIn.street": "Activity.site_street",
    "form:SignUpForm.note": "SignUp.note",
    "api:SignUpIn.note": "SignUp.note",
    # organisations applying to join
    "form:ApplyForm.name": "UnitApplication.name",
    "form:ApplyForm.address": "UnitApplication.address",
    "form:ApplyForm.contact_name": "UnitApplication.contact_name",
    "form:ApplyForm.email": "UnitApplication.email",
    "form:ApplyForm.venues_plan": "UnitApplication.venues_plan",
    "form:DeclineForm.reason": "UnitApplication.reason",
    "api:DeclineApplicationIn.reason": "UnitApplication.reason",
    # plans, pairings, the committee's settings
    "form:NewPlanForm.title": "Plan.title",
    "api:PlanIn.title": "Plan.title",
    "form:EntryForm.title": "PlanEntry.title",
    "form:SettingsForm.name": "Committee.name",
    "form:SettingsForm.name_en": "Committee.name_en",
    "form:SettingsForm.print_title": "Committee.print_title",
}

_PHONE = "a phone number: digits, spaces, + - ( ) only (venue_spec.PHONE_PATTERN)"
_TIME = "a time of day: HH:MM only (forms.TIME), else refused"
_CHOICE = "a choice: checked against its list (or parsed as an id) before use"

#: Text sources that cannot hold markup: source → why.
NOT_FREE_TEXT: dict[str, str] = {
    **{
        k: _PHONE
        for k in (
            "form:VenueForm.phone",
            "api:VenueIn.phone",
            "api:VenuePatch.phone",
            "import:phone",
            "form:UnitForm.phone",
            "form:GroupForm.contact_phone",
            "api:GroupIn.contact_phone",
            "api:GroupPatch.contact_phone",
            "form:UserForm.phone",
            "form:ContactForm.phone",
            "form:ApplyForm.phone",
            "raw:bookings/phone.caller_phone",
            "api:BookingIn.caller_phone",
        )
    },  # fmt: skip
    **{
        k: _TIME
        for k in (
            "form:BookingForm.start",
            "form:BookingForm.end",
            "form:RescheduleForm.start",
            "form:RescheduleForm.end",
            "form:ActivityForm.start",
            "form:ActivityForm.end",
            "form:ActivityForm.deadline_time",
            "raw:bookings/phone.start",
            "raw:bookings/phone.end",
        )
    },  # fmt: skip
    "raw:bookings/phone.date": "a date: parsed (date.fromisoformat), else refused",
    **{
        f"form:VenueForm.hours_{d}": "a day's opening hours: parsed (core.hours), else refused"
        for d in range(7)
    },  # fmt: skip
    "api:VenueIn.hours": "opening hours: parsed (core.hours), else refused",
    "api:VenuePatch.hours": "opening hours: parsed (core.hours), else refused",
    "import:hours": "opening hours: parsed (core.hours), else refused",
    "import:unit": "names an existing unit: refused unless one has that name (its name shown)",
    "api:VenueIn.unit": "names an existing unit: refused unless one has that name",
    "import:street": "ignored on import: the street comes from the location",
    "form:ApplyForm.lon": "a coordinate: parsed as a number, else refused",
    "form:ApplyForm.lat": "a coordinate: parsed as a number, else refused",
    "form:ApplyForm.crs": "a coordinate system key: one of three, else refused",
    "form:ActivityForm.site_area": "a GeoJSON polygon: parsed and checked, stored as geometry",
    "api:SiteIn.area": "a GeoJSON polygon: parsed and checked, stored as geometry",
    "form:ActivityForm.plan_entry": "a plan entry id: parsed as an integer",
    "form:PreferencesForm.preferred_months": "month numbers: parsed (rotation.parse_months)",
    "form:PreferencesForm.blackout_months": "month numbers: parsed (rotation.parse_months)",
    "raw:account.scopes": "token scopes: each one of a fixed list, else refused",
    "raw:account.session_id": "a login session id: parsed as an integer",
    "raw:bookings/changes.confirmed": "a flag: compared with '1'",
    "raw:bookings/common.next": "a local path to return to: checked before any redirect",
    "raw:bookings/form.confirm_overlap": "a flag: compared with '1'",
    "raw:bookings/inbox.target": _CHOICE,
    "raw:bookings/owners.no_show": "a flag: compared with '1'",
    "raw:bookings/phone.venue_id": "a venue id: digits only, else refused",
    "raw:bookings/phone.group": "a group id: digits only, else none",
    "raw:bookings/phone.all": "a flag: compared with '1'",
    "raw:groups.active": "a flag: compared with '1'",
    "raw:users.active": "a flag: compared with '1'",
    "raw:units.status": _CHOICE,
    "raw:units.confirmed": "a flag: compared with '1'",
    "raw:venues.retired": "a flag: compared with '1'",
    "raw:venues.cancel_ids": "booking ids: parsed as integers",
    "raw:plans.unit": "a unit id: parsed as an integer",
    "raw:activities.*": "attendance counts: digits only, else refused",
    "api:ActivitiesQuery.month": "a month: YYYY-MM only (its pattern), else refused",
    "api:VenueQuery.near": "a point: lon,lat only (its pattern), else refused",
    "api:VenueQuery.type": "venue type keys: each one of the vocabulary, else refused",
    "raw:security.*": "every value only checked for a NUL character",
}

#: Stored but shown nowhere (NEVER_SHOWN): the world stores every payload in them too, and the
#: test fails when a page or file starts showing one (then they belong in FREE_TEXT).
STORED_UNSHOWN = ("PlanEntry.note", "Pairing.note")

#: Text sources no page or file shows: source → why.
NEVER_SHOWN: dict[str, str] = {
    "form:LoginForm.username": "compared with user names; a failed log-in shows the form empty"
    " of it (checked: the log-in page answered with each payload is escaped)",
    "form:LoginForm.password": "a password: hashed, never shown",
    "form:PasswordForm.current": "a password: hashed, never shown",
    "form:PasswordForm.new": "a password: hashed, never shown",
    "form:SetPasswordForm.password": "a password: hashed, never shown",
    "form:SetPasswordForm.confirm": "a password: compared, never shown",
    "api:VenueQuery.q": "a search term: filters a JSON answer, which does not repeat it",
    "api:GroupsQuery.q": "a search term: filters a JSON answer, which does not repeat it",
    "api:AuditQuery.actor": "a filter: selects a JSON answer's entries, not repeated in it",
    "api:AuditQuery.action": "a filter: selects a JSON answer's entries, not repeated in it",
    "api:AuditQuery.object_type": "a filter: selects a JSON answer's entries, not repeated in it",
    **{
        k: "a note kept with the turn or pairing: no page, file or API answer shows it (the"
        " world stores the payloads in it all the same: the test fails once one does)"
        for k in ("form:EntryForm.note", "form:PairingForm.note", "api:PairingIn.note")
    },
    "form:ApplyForm.website": "a trap for robots: a filled one refuses the application quietly",
}
