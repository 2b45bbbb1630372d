"""The one map (一张图): the map page, its chrome-less embed, the venue and boundary data it
draws, and downloads of the filtered result.

The page is a small shell (HTML + config); the venues come from ``/map/data.json`` as
delta-encoded columns (ids, 1 m integer coordinates, type and unit as indexes, names) with the
same filter parameters as the page, gzipped, and are drawn by ``static/js/one-map.js`` with
Leaflet and Leaflet.markercluster; a popup fetches its venue's details when it opens
(``/map/venues/ID/popup``, ``/map/venues/ID/free-today``). ``/map/data.geojson`` answers the
same filters as compact GeoJSON for other readers. Filtering happens in
``mapservice.core.mapfilter``; building the answers in ``mapservice.core.mapdata``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from datetime import time as dt_time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from mapservice.core import mapdata
from mapservice.core.collector import cycle_collector_paused
from mapservice.core.errors import NotFound, ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.ids import as_id
from mapservice.core.mapfilter import MapFilter, Match, parse_filter, select_venues
from mapservice.core.venue_export import STREAMED, venue_chunks
from mapservice.core.venue_io import write_venues
from mapservice.core.vocab import ActivityKind, VenueType
from mapservice.maps import map_labels, one_map
from mapservice.models import Committee
from mapservice.operations import activity_map
from mapservice.operations import mapview as ops
from mapservice.operations.venues import row_batches, row_of
from mapservice.policy import is_committee_staff, venues_seen_by_key
from mapservice.web.auth import current_actor
from mapservice.web.compress import finish, gzip_bytes
from mapservice.web.database import get_db
from mapservice.web.maps import cached_map_parts, configured_tiles
from mapservice.web.streaming import download, with_read_session

bp = Blueprint("map", __name__, url_prefix="/map")

EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "geojson": "application/geo+json",
    "html": "text/html; charset=utf-8",
}


def _committee() -> Committee:
    return committee_asked(current_actor())


def committee_asked(actor: Any) -> Committee:
    """The committee a page listing venues shows: ``?committee=SLUG`` for anyone, else the
    user's own (a visitor's: the first one); a slug naming none is a 404 saying so."""
    slug = request.args.get("committee", "").strip()
    committee = ops.map_committee(get_db(), actor, slug)
    if committee is None:
        if slug:
            raise NotFound(
                "committee_not_found", _("There is no committee '%(slug)s'.", slug=slug[:50])
            )
        abort(404)
    return committee


def staff_counts(actor: Any, committee: Committee) -> ops.VenueCounts | None:
    """The breakdown of what the committee's staff see (None for everyone else, who see its
    public venues only)."""
    if not is_committee_staff(actor, committee.id):
        return None
    return ops.venue_counts(get_db(), actor, committee)


def _window(flt: MapFilter, tz: ZoneInfo) -> dict[str, str] | None:
    """The filter's "free between" window for the popups: its text, the parameters that ask
    the popup endpoint about it, and those that prefill the venue page's booking form
    (date, start and end when it lies within one day, else date and start; the units and
    headcount asked for)."""
    if flt.free_from is None or flt.free_to is None:
        return None
    start, end = flt.free_from.astimezone(tz), flt.free_to.astimezone(tz)
    midnight = end.date() == start.date() + timedelta(days=1) and end.time() == dt_time(0)
    same_day = end.date() == start.date() or midnight
    book = {"date": start.date().isoformat(), "start": f"{start:%H:%M}"}
    if same_day:
        book["end"] = f"{end:%H:%M}"
    book["week"] = book["date"]
    # "At least N units / people" become the booking's units and headcount.
    if flt.min_units:
        book["units"] = str(flt.min_units)
    if flt.min_headcount:
        book["headcount"] = str(flt.min_headcount)
    return {
        "text": window_text(start, end),
        "query": urlencode(
            [("free_from", f"{start:%Y-%m-%dT%H:%M}"), ("free_to", f"{end:%Y-%m-%dT%H:%M}")]
        ),
        "book": urlencode(list(book.items())),
    }


def window_text(start: datetime, end: datetime) -> str:
    """``2026-12-05 14:00–16:00`` (``…–24:00`` at midnight; both dates when it spans days)."""
    if end.date() == start.date():
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"
    if end.date() == start.date() + timedelta(days=1) and end.time() == dt_time(0):
        return f"{start:%Y-%m-%d %H:%M}–24:00"
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"


def _filter(committee: Committee) -> tuple[MapFilter, dict[str, str], ZoneInfo]:
    tz = ZoneInfo(committee.timezone)
    flt, errors = parse_filter(request.args.to_dict(flat=False), tz)
    return flt, errors, tz


def _crs() -> str:
    crs = request.args.get("crs", "wgs84")
    if crs not in mapdata.DISPLAY_CRS:
        raise ValidationFailed(_("Unknown coordinate system '%(value)s'.", value=crs), {"crs": crs})
    return crs


def _matches(
    committee: Committee, flt: MapFilter, tz: ZoneInfo, *, hours_today: bool = True
) -> tuple[list[Match], int]:
    """The filtered venues and today's weekday (for the popups' opening hours; with
    ``hours_today=False`` today's hours are not loaded unless the filter needs hours)."""
    today = datetime.now(tz).weekday()
    free = flt.free_from is not None and flt.free_to is not None
    facts = ops.load_facts(
        get_db(),
        current_actor(),
        committee,
        weekdays=None if free else [today] if hours_today else [],
        closures_between=(flt.free_from, flt.free_to)
        if flt.free_from is not None and flt.free_to is not None
        else None,
    )
    check = None
    if flt.free_from is not None and flt.free_to is not None:
        check = ops.engine_free_check(
            get_db(), facts, flt.free_from, flt.free_to, flt.min_units or 1, tz, datetime.now(tz)
        )
    return select_venues(facts, flt, tz, free_check=check), today


def _query(committee: Committee, flt: MapFilter, **extra: str) -> str:
    pairs = [("committee", committee.slug), *flt.query_pairs(), *extra.items()]
    return urlencode(pairs)


MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def activity_filter(month: str, kind: str, open_only: str) -> activity_map.ActivityFilter:
    """The activity layer's filter from its parameters (a bad month or kind: 422)."""
    errors = {}
    if month and not MONTH.match(month):
        errors["month"] = _("Give the month as YYYY-MM.")
    if kind and kind not in {k.value for k in ActivityKind}:
        errors["kind"] = _("Choose a kind of activity.")
    if errors:
        raise ValidationFailed(_("Some filters are not valid."), errors)
    return activity_map.ActivityFilter(month, kind, open_only in ("1", "on", "true"))


def _activity_options(actor: Any, committee: Committee, tz: ZoneInfo) -> dict[str, Any] | None:
    """The activity layer of a member's map (activities and pairings are not public), its
    first filter from the page's ``act_month``, ``act_kind``, ``act_open``."""
    if actor is None or not actor.active or actor.committee_id != committee.id:
        return None
    args = request.args
    flt = activity_filter(
        args.get("act_month", ""), args.get("act_kind", ""), args.get("act_open", "")
    )
    return {
        "dataUrl": url_for("map.activities"),
        "kinds": activity_map.kinds(lang()),
        "months": activity_map.month_choices(datetime.now(tz).date()),
        "filter": {"month": flt.month, "kind": flt.kind, "open": flt.open_only},
    }


def _shell(template: str, embed: bool) -> Any:
    db = get_db()
    actor = current_actor()
    committee = _committee()
    flt, errors, _tz = _filter(committee)
    layer = _activity_options(actor, committee, _tz)
    units, streets = ops.filter_choices(db, actor, committee)
    tiles = configured_tiles()
    venue_arg = request.args.get("venue", "")
    venue_id = as_id(venue_arg)
    query = _query(committee, flt)
    types = [
        {"key": t.value, "label": t.label(lang()), "color": c, "glyph": g}
        for t in VenueType
        for c, g in [mapdata.TYPE_STYLE[t.value]]
    ]
    # The map's own texts (the venue layer's) and those of the page around it.
    labels: dict[str, str] = {
        **map_labels(),
        "shown": _("%(shown)s of %(total)s venues shown"),
        "more": _("… and %(n)s more: zoom in or filter."),
        "none": _("No venue matches these filters."),
        "loadFailed": _("The venues could not be loaded; reload the page."),
        "pick": _("Click the map to choose the point."),
    }
    config = {
        "dataUrl": url_for("map.columns") + "?" + query,
        "areasUrl": url_for("map.areas") + "?" + urlencode([("committee", committee.slug)]),
        "venueUrl": url_for("venues.detail", venue_id=0)[:-1],
        "freeUrl": url_for("map.free_today", venue_id=0)[: -len("0/free-today")],
        "popupUrl": url_for("map.popup", venue_id=0)[: -len("0/popup")],
        "tiles": [t.as_json() for t in tiles],
        "types": types,
        "units": [{"id": u, "name": n} for u, n in units],
        "venue": venue_id,
        "near": list(flt.near) if flt.near else None,
        "radiusKm": flt.radius_km,
        "window": _window(flt, _tz),
        "embed": embed,
        "labels": labels,
    }
    # The map itself: built by folium (mapservice.maps), its code allowed by this response's CSP.
    parts = cached_map_parts(
        (
            "one_map",
            committee.id,
            tuple(tiles),
            lang(),
            query,
            venue_id,
            json.dumps(layer, sort_keys=True),
        ),
        lambda: one_map(
            areas=ops.load_areas(db, committee),
            tiles=tiles,
            lang=lang(),
            labels=labels,
            data_url=str(config["dataUrl"]),
            venue_url=str(config["venueUrl"]),
            popup_url=str(config["popupUrl"]),
            free_url=str(config["freeUrl"]),
            window=_window(flt, _tz),
            venue=venue_id,
            activities=layer,
        ),
    )
    response = render_template(
        template,
        map_parts=parts,
        committee=committee,
        flt=flt,
        errors=errors,
        units=units,
        streets=streets,
        types=types,
        config=config,
        query=query,
        committees=list(db.scalars(select(Committee).order_by(Committee.id))),
        counts=None if embed else staff_counts(actor, committee),
        embed_src=url_for("map.embed") + "?" + query,
    )
    return finish(Response(response, mimetype="text/html"))


@bp.route("")
def page() -> Any:
    return _shell("map/page.html", embed=False)


@bp.route("/embed")
def embed() -> Any:
    return _shell("map/embed.html", embed=True)


# Built answers of the data endpoint, per app: key -> (stamp, expiry, body, gzipped body).
# The stamp (operations.mapview.data_stamp) catches venue, hours, closure and unit changes;
# the expiry bounds what it cannot see (a unit renamed) and the turn of the day. Answers to
# "free between" are never cached (they depend on bookings).
CACHE_SECONDS = 60
CACHE_ENTRIES = 64


def _scope_key(committee: Committee) -> tuple[Any, ...]:
    # The committee's staff see the venues they run besides the public ones (its admin all
    # of them, a secretary its unit's: policy.venues_seen_by_key); everyone else (visitors,
    # bookers, another committee's staff) its public ones.
    actor = current_actor()
    staff = is_committee_staff(actor, committee.id)
    return (committee.id, venues_seen_by_key(actor) if staff else "public")


def _cached_answer(kind: str, build: Any, mimetype: str) -> Any:
    """The filtered venues built by ``build(matches, crs, today, near) -> JSON value``,
    cached per scope, filter, coordinate system and day (see above)."""
    committee = _committee()
    flt, errors, tz = _filter(committee)
    if errors:
        raise ValidationFailed(_("Some filters are not valid."), errors)
    crs = _crs()
    cache: dict[Any, Any] = current_app.extensions.setdefault("map_data_cache", {})
    key = (kind, _scope_key(committee), tuple(flt.query_pairs()), crs, datetime.now(tz).date())
    stamp = ops.data_stamp(get_db(), committee)
    # "Free between" depends on bookings, which change all the time: never cached.
    hit = cache.get(key) if flt.free_from is None else None
    if hit is not None and hit[0] == stamp and hit[1] > time.monotonic():
        body, zipped = hit[2], hit[3]
    else:
        with cycle_collector_paused():
            matches, today = _matches(committee, flt, tz, hours_today=kind == "geojson")
            body = json.dumps(
                build(matches, crs, today, flt.near), ensure_ascii=False, separators=(",", ":")
            ).encode()
            del matches
        zipped = gzip_bytes(body)
        if flt.free_from is None:
            if len(cache) >= CACHE_ENTRIES:
                cache.pop(next(iter(cache)))
            cache[key] = (stamp, time.monotonic() + CACHE_SECONDS, body, zipped)
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = "private, no-cache"
    return finish(response, gzipped=zipped)


@bp.route("/data.json")
def columns() -> Any:
    """What the map page draws: the filtered venues as delta-encoded columns in ``crs``
    (``wgs84`` or ``gcj02``); see :func:`mapservice.core.mapdata.venue_columns`."""
    return _cached_answer(
        "columns",
        lambda matches, crs, _today, near: mapdata.venue_columns(matches, crs, near),
        "application/json",
    )


@bp.route("/data.geojson")
def data() -> Any:
    """The filtered venues, compact GeoJSON in ``crs`` (``wgs84`` or ``gcj02``)."""
    return _cached_answer("geojson", mapdata.venue_features, "application/geo+json")


@bp.route("/activities.json")
def activities() -> Any:
    """The activity layer's data: the upcoming activities the user sees under ``month``,
    ``kind``, ``open``, the pairings in force and the paired streets, in ``crs``
    (:func:`mapservice.operations.activity_map.layer_data`; empty for a visitor)."""
    args = request.args
    flt = activity_filter(args.get("month", ""), args.get("kind", ""), args.get("open", ""))
    answer = activity_map.layer_data(
        get_db(),
        current_actor(),
        flt,
        crs=_crs(),
        lang=lang(),
        url=url_for("activities.detail", activity_id=0)[:-1],
    )
    response = Response(
        json.dumps(answer, ensure_ascii=False, separators=(",", ":")),
        mimetype="application/geo+json",
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return finish(response)


@bp.route("/venues/<int:venue_id>/popup")
def popup(venue_id: int) -> Any:
    """A venue's popup details (capacity, today's hours, facilities, address, phone), fetched
    by the map page when the popup opens; 404 unless the venue is on a map the user sees.
    With the map's ``free_from``/``free_to``: also ``window``, whether it is open then and how
    many units are free throughout (from the booking engine's holds)."""
    found = ops.load_one(get_db(), current_actor(), venue_id)
    if found is None:
        abort(404)
    facts, tz_name = found
    tz = ZoneInfo(tz_name)
    flt, errors = parse_filter(request.args.to_dict(flat=False), tz)
    if flt.free_from is None or flt.free_to is None or errors:
        answer = mapdata.venue_popup(facts, datetime.now(tz).weekday())
    else:
        start, end = flt.free_from, flt.free_to
        # The opening hours shown are those of the window's (first) day.
        day = start.astimezone(tz).date()
        answer = mapdata.venue_popup(facts, day.weekday())
        answer["hours_day"] = day.isoformat()
        is_open, free = ops.window_availability(get_db(), facts, start, end, tz, datetime.now(tz))
        answer["window"] = {
            "text": window_text(start.astimezone(tz), end.astimezone(tz)),
            "open": is_open,
            "free": free,
            "total": facts.capacity_units,
        }
    response = jsonify(answer)
    # Bookings change what is free: a window's answer is asked afresh each time.
    window = "window" in answer
    response.headers["Cache-Control"] = "private, no-cache" if window else "private, max-age=60"
    return response


@lru_cache(maxsize=4)
def _script_bytes(path: str, _mtime: float) -> tuple[bytes, bytes]:
    body = Path(path).read_bytes()
    return body, gzip_bytes(body)


@bp.route("/one-map.js")
def script() -> Any:
    """The map page's script (``static/js/one-map.js``), gzipped — Flask's static route sends
    files uncompressed, and it is a fifth of a first visit's bytes otherwise — with an ETag,
    so a revisit costs a 304."""
    path = Path(current_app.static_folder or "", "js", "one-map.js")
    body, zipped = _script_bytes(str(path), path.stat().st_mtime)
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return finish(response, gzipped=zipped)


@bp.route("/areas.geojson")
def areas() -> Any:
    """The committee's district and street boundaries in ``crs``."""
    committee = _committee()
    crs = _crs()
    body = json.dumps(
        mapdata.area_features(ops.load_areas(get_db(), committee), crs),
        ensure_ascii=False,
        separators=(",", ":"),
    )
    response = Response(body, mimetype="application/geo+json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return finish(response)


@bp.route("/export.<fmt>")
def export(fmt: str) -> Any:
    """The filtered venues as a file: CSV or GeoJSON (same columns as the registry's export),
    or the one map as one HTML file that opens offline (the public venues, as a visitor's map
    shows them: it is meant to be passed on)."""
    if fmt not in EXPORT_TYPES:
        abort(404)
    committee = _committee()
    flt, errors, tz = _filter(committee)
    if errors:
        raise ValidationFailed(_("Some filters are not valid."), errors)
    if fmt == "html":
        from mapservice.operations.map_export import export_html

        exported = export_html(get_db(), committee, flt)
        response = Response(
            exported.html,
            mimetype="text/html",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="map-{datetime.now(tz):%Y%m%d}.html"'
                ),
                "Cache-Control": "private, no-cache",
            },
        )
        return finish(response)
    matches, _today = _matches(committee, flt, tz)
    ids = [m.venue.id for m in matches]
    crs = "wgs84" if fmt == "geojson" else None
    filename = f"map-venues-{datetime.now(tz):%Y%m%d}.{fmt}"
    if fmt not in STREAMED:
        rows = [row_of(v, crs) for v in ops.load_venues(get_db(), ids)]
        return download([write_venues(rows, fmt)], EXPORT_TYPES[fmt], filename, cache="private")
    # Streamed: the rows are loaded and sent a thousand venues at a time, by a session of
    # the body's own (the request's is closed once this view returns).
    body, session = with_read_session(lambda s: venue_chunks(row_batches(s, ids, crs), fmt))
    return download(body, EXPORT_TYPES[fmt], filename, cache="private", on_close=[session.close])


@bp.route("/venues/<int:venue_id>/free-today")
def free_today(venue_id: int) -> Any:
    """The next free slots today at a venue (for the popup), from the booking engine:
    consecutive free slots joined, at most three windows, only the future."""
    from mapservice.booking.availability import week_slots
    from mapservice.policy import get_venue

    venue = get_venue(get_db(), current_actor(), venue_id)
    tz = ZoneInfo(venue.committee.timezone)
    now = datetime.now(tz)
    windows: list[list[str]] = []
    for _day, slots in week_slots(get_db(), current_actor(), venue, now.date(), now, days=1):
        for slot in slots:
            if slot.start < now or slot.free == 0:
                continue
            start, end = slot.start.astimezone(tz), slot.end.astimezone(tz)
            if windows and windows[-1][1] == f"{start:%H:%M}":
                windows[-1][1] = f"{end:%H:%M}"
            elif len(windows) < 3:
                windows.append([f"{start:%H:%M}", f"{end:%H:%M}"])
            else:
                break
    response = jsonify({"venue": venue.id, "free": windows})
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
