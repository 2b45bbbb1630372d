"""What the one map draws: base-map definitions, the venues (as columns for the map page, as
compact GeoJSON for other readers) and the boundaries, each in the coordinate system of the
base map shown.

Pure: plain values in, plain (JSON-ready) values out. Venues and boundaries are stored in
WGS-84; an AMap base map is GCJ-02, so for it every coordinate is converted here, on the
server, with :func:`mapservice.core.coords.from_wgs84` (about 550 m in Runzhou).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mapservice.core.coords import from_wgs84
from mapservice.core.hours import day_text
from mapservice.core.mapfilter import Match, VenueFacts
from mapservice.core.vocab import VenueType

__all__ = [
    "DISPLAY_CRS",
    "MBTILES_URL",
    "TILE_KEYS",
    "TYPE_STYLE",
    "TileLayer",
    "area_features",
    "convert_geometry",
    "mbtiles_path",
    "tile_layers",
    "venue_columns",
    "venue_features",
    "venue_popup",
]

#: Coordinate systems a base map may need.
DISPLAY_CRS: tuple[str, ...] = ("wgs84", "gcj02")
TILE_KEYS: tuple[str, ...] = ("osm", "tianditu", "amap", "mbtiles", "none")
#: Decimals kept in map coordinates: 1e-6° is about 0.1 m.
COORD_DECIMALS = 6
#: The map page's coordinates are integers of 1e-5° (about 1 m; a marker is 24 px wide and
#: a pixel is 0.3 m at the deepest zoom).
COORD_SCALE = 100_000
#: Version of the column format below (the page refuses what it does not know).
COLUMNS_VERSION = 1

#: Marker colour and a one-character glyph per venue type (the legend shows both).
TYPE_STYLE: dict[str, tuple[str, str]] = {
    "badminton": ("#1e88e5", "羽"),
    "table_tennis": ("#00897b", "乒"),
    "basketball": ("#ef6c00", "篮"),
    "football": ("#43a047", "足"),
    "gym": ("#6d4c41", "健"),
    "yoga_dance": ("#d81b60", "舞"),
    "meeting_room": ("#5e35b1", "会"),
    "lecture_hall": ("#3949ab", "报"),
    "reading_room": ("#00acc1", "读"),
    "patriotic_base": ("#c62828", "爱"),
    "youth_home": ("#f9a825", "青"),
    "entrepreneurship_base": ("#7cb342", "创"),
    "social_practice_base": ("#8e24aa", "实"),
    "public_land": ("#2e7d32", "地"),
    "other": ("#757575", "他"),
}
assert set(TYPE_STYLE) == {t.value for t in VenueType}


@dataclass(frozen=True)
class TileLayer:
    """A base map: URL template, attribution and the coordinate system its tiles are drawn in."""

    key: str
    name: str
    url: str
    attribution: str
    crs: str
    subdomains: str = ""
    max_zoom: int = 18
    #: The zooms the source has tiles for (an MBTiles file's range): Leaflet stretches the
    #: nearest ones beyond them instead of asking for tiles that do not exist.
    native_zooms: tuple[int, int] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "url": self.url,
            "attribution": self.attribution,
            "crs": self.crs,
            "subdomains": self.subdomains,
            "maxZoom": self.max_zoom,
        }


#: Where the app serves the tiles of an MBTiles base map (``web/tiles.py``).
MBTILES_URL = "/tiles/{z}/{x}/{y}"


def mbtiles_path(setting: str) -> str | None:
    """The file named by an ``mbtiles:PATH`` entry of ``MAPSERVICE_TILES`` (the first), if any."""
    for entry in setting.split(","):
        head, sep, path = entry.strip().partition(":")
        if sep and head.lower() == "mbtiles" and path.strip():
            return path.strip()
    return None


def tile_layers(
    setting: str,
    tianditu_key: str = "",
    lang: str = "zh",
    mbtiles_zooms: tuple[int, int] | None = None,
) -> list[TileLayer]:
    """The base maps named in the ``MAPSERVICE_TILES`` setting (comma list of ``osm``,
    ``tianditu``, ``amap``, ``mbtiles:PATH``, ``none``), in that order; unknown names are
    ignored, Tianditu without a key is left out, and an empty result means ``none``
    (boundaries only). An MBTiles file is served by the app (:data:`MBTILES_URL`), its tiles
    taken as Web Mercator on WGS-84 like OSM's, drawn beyond ``mbtiles_zooms`` (the file's
    lowest and highest zoom) by stretching its nearest tiles; the file itself is checked at
    start-up."""
    en = lang == "en"
    out: list[TileLayer] = []
    keys = (
        "mbtiles" if k.strip().lower().startswith("mbtiles:") else k.strip().lower()
        for k in setting.split(",")
        if k.strip()
    )
    for key in dict.fromkeys(keys):
        if key == "mbtiles":
            out.append(
                TileLayer(
                    "mbtiles",
                    "Local base map" if en else "本地底图",
                    MBTILES_URL,
                    "MBTiles",
                    "wgs84",
                    max_zoom=19,
                    native_zooms=mbtiles_zooms,
                )
            )
        elif key == "osm":
            out.append(
                TileLayer(
                    "osm",
                    "OpenStreetMap",
                    "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "© OpenStreetMap contributors",
                    "wgs84",
                    max_zoom=19,
                )
            )
        elif key == "tianditu" and tianditu_key:
            out.append(
                TileLayer(
                    "tianditu",
                    "Tianditu" if en else "天地图",
                    "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
                    "&VERSION=1.0.0&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                    f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={tianditu_key}",
                    "© 国家地理信息公共服务平台 天地图 (Tianditu)",
                    "wgs84",
                    subdomains="01234567",
                )
            )
        elif key == "amap":
            out.append(
                TileLayer(
                    "amap",
                    "AMap" if en else "高德地图",
                    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                    "&style=8&x={x}&y={y}&z={z}",
                    "© 高德地图 AutoNavi (AMap), GCJ-02",
                    "gcj02",
                    subdomains="1234",
                )
            )
        elif key == "none":
            out.append(
                TileLayer("none", "No base map" if en else "无底图", "", "", "wgs84", max_zoom=19)
            )
    return out or [
        TileLayer("none", "No base map" if en else "无底图", "", "", "wgs84", max_zoom=19)
    ]


def _point(lon: float, lat: float, crs: str) -> list[float]:
    x, y = from_wgs84(lon, lat, crs) if crs != "wgs84" else (lon, lat)
    return [round(x, COORD_DECIMALS), round(y, COORD_DECIMALS)]


def venue_features(
    matches: Sequence[Match],
    crs: str = "wgs84",
    weekday: int | None = None,
    near: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The matched venues as a compact GeoJSON FeatureCollection in ``crs``.

    Property keys are one letter to keep 10,000 venues small: ``i`` id, ``n`` name, ``u`` unit
    id (names in the collection's ``units`` member), ``t`` type, ``c`` capacity units, ``h``
    maximum headcount, ``a`` address, ``f`` facilities, ``p`` phone, ``o`` today's opening hours
    (``weekday``, 0 = Monday; ``""`` closed), ``d`` distance in km when the filter had a point.
    Empty values are left out. ``near`` (the filter's point, WGS-84) comes back in ``crs``.
    """
    units: dict[str, str] = {}
    features: list[dict[str, Any]] = []
    for m in matches:
        v = m.venue
        units[str(v.unit_id)] = v.unit_name
        props: dict[str, Any] = {"i": v.id, "n": v.name, "u": v.unit_id, "t": v.type}
        props["c"] = v.capacity_units
        if v.max_headcount:
            props["h"] = v.max_headcount
        if v.address:
            props["a"] = v.address
        if v.facilities:
            props["f"] = v.facilities
        if v.phone:
            props["p"] = v.phone
        if weekday is not None:
            props["o"] = day_text(list(v.ranges), weekday)
        if m.distance_km is not None:
            props["d"] = round(m.distance_km, 3)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": _point(v.lon, v.lat, crs)},
                "properties": props,
            }
        )
    out: dict[str, Any] = {"type": "FeatureCollection", "crs_name": crs, "units": units}
    if near is not None:
        out["near"] = _point(near[0], near[1], crs)
    out["features"] = features
    return out


def venue_columns(
    matches: Sequence[Match], crs: str = "wgs84", near: tuple[float, float] | None = None
) -> dict[str, Any]:
    """The matched venues as columns: only what the map page needs to draw the markers,
    the legend, the layer switches and the list, in the order of ``matches``. Popup details
    come one venue at a time (:func:`venue_popup`).

    ``id``, ``x``, ``y``: venue ids and coordinates in ``crs`` as integers of
    1/``scale`` degree, each column delta-encoded (the first value as is, then differences
    from the previous one); ``t``: index into ``types`` (venue type keys); ``u``: index into
    ``units`` (``[unit id, name]`` pairs); ``name``: venue names. ``near`` (the filter's
    point, WGS-84) comes back in ``crs`` as plain degrees. gzip does the rest: about 7 bytes
    a venue instead of 24 for the GeoJSON.
    """
    types: dict[str, int] = {}
    units: dict[int, int] = {}
    unit_list: list[list[Any]] = []
    ids: list[int] = []
    xs: list[int] = []
    ys: list[int] = []
    ts: list[int] = []
    us: list[int] = []
    names: list[str] = []
    last_id = last_x = last_y = 0
    convert = crs != "wgs84"
    for m in matches:
        v = m.venue
        lon, lat = from_wgs84(v.lon, v.lat, crs) if convert else (v.lon, v.lat)
        qx, qy = round(lon * COORD_SCALE), round(lat * COORD_SCALE)
        ids.append(v.id - last_id)
        xs.append(qx - last_x)
        ys.append(qy - last_y)
        last_id, last_x, last_y = v.id, qx, qy
        ts.append(types.setdefault(v.type, len(types)))
        if v.unit_id not in units:
            units[v.unit_id] = len(unit_list)
            unit_list.append([v.unit_id, v.unit_name])
        us.append(units[v.unit_id])
        names.append(v.name)
    out: dict[str, Any] = {
        "v": COLUMNS_VERSION,
        "crs": crs,
        "scale": COORD_SCALE,
        "types": list(types),
        "units": unit_list,
    }
    if near is not None:
        out["near"] = _point(near[0], near[1], crs)
    out.update(id=ids, x=xs, y=ys, t=ts, u=us, name=names)
    return out


def venue_popup(venue: VenueFacts, weekday: int) -> dict[str, Any]:
    """What a venue's popup adds to the map's columns: capacity, headcount, today's opening
    hours (``weekday``, 0 = Monday; ``""`` closed), facilities, address, phone."""
    return {
        "venue": venue.id,
        "capacity": venue.capacity_units,
        "headcount": venue.max_headcount,
        "today": day_text(list(venue.ranges), weekday),
        "facilities": venue.facilities,
        "address": venue.address,
        "phone": venue.phone,
    }


def _convert_coords(coords: Any, crs: str) -> Any:
    if coords and isinstance(coords[0], int | float):
        return _point(float(coords[0]), float(coords[1]), crs)
    return [_convert_coords(c, crs) for c in coords]


def convert_geometry(geometry: dict[str, Any], crs: str) -> dict[str, Any]:
    """A GeoJSON geometry (WGS-84) with every position converted to ``crs``."""
    if crs == "wgs84":
        return geometry
    if geometry.get("type") == "GeometryCollection":
        return {
            "type": "GeometryCollection",
            "geometries": [convert_geometry(g, crs) for g in geometry.get("geometries", [])],
        }
    return {"type": geometry["type"], "coordinates": _convert_coords(geometry["coordinates"], crs)}


def area_features(
    areas: Sequence[tuple[int, str, str, bool, dict[str, Any]]], crs: str = "wgs84"
) -> dict[str, Any]:
    """District and street boundaries ``(id, name, level, approximate, geometry)`` as GeoJSON
    in ``crs``; districts first so streets draw on top."""
    ordered = sorted(areas, key=lambda a: (a[2] != "district", a[1]))
    return {
        "type": "FeatureCollection",
        "crs_name": crs,
        "features": [
            {
                "type": "Feature",
                "geometry": convert_geometry(geometry, crs),
                "properties": {"id": i, "name": name, "level": level, "approximate": approx},
            }
            for i, name, level, approx, geometry in ordered
        ],
    }
