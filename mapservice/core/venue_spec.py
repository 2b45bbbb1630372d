"""The venue's fields, declared once: name, type, range, default, label, help and where each
field appears. Every surface is derived from this table or checked against it
(``tests/test_venue_spec.py``):

- ``db``: the database check constraints (``models/venues.py``, ``check_sql``);
- ``import`` / ``export``: the file columns, their Chinese headers and the other headers the
  importer accepts, and the import's validation (``core/venue_validate.py``);
- ``form``: the WTForms venue form's validators (``web/forms.py``);
- ``api``: the pydantic ``VenueIn`` / ``VenuePatch`` constraints (``api/schemas.py``) and the
  venue's API properties (``operations/venues.venue_properties``).

Labels and help texts are English msgids marked with ``N_``: translate them where they are
shown (``_(field.label)``; a form wraps them in its lazy gettext). Pure: no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from mapservice.core.i18n import N_
from mapservice.core.vocab import BookableBy, Crs, VenueType

Kind = Literal["text", "int", "float", "bool", "choice"]
Surface = Literal["db", "import", "export", "form", "api"]
ALL: frozenset[Surface] = frozenset({"db", "import", "export", "form", "api"})


@dataclass(frozen=True)
class VenueField:
    """One field of a venue. ``min``/``max`` bound a number (inclusive); ``max_length`` a
    text; ``choices`` are the only numbers allowed; ``enum`` the vocabulary of a choice.
    ``nullable``: empty means "no limit" (None) rather than the default; ``stored``: the
    venue's row holds the value as shown, under the field's name."""

    name: str
    kind: Kind
    label: str
    zh_header: str = ""
    help: str = ""
    synonyms: tuple[str, ...] = ()
    required: bool = False
    default: object = None
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    choices: tuple[int, ...] = ()
    enum: type[StrEnum] | None = None
    pattern: str | None = None
    surfaces: frozenset[Surface] = ALL
    #: Held by the venue's row under this name as the files and the API show it (False: the
    #: unit's and street's names, the hours text, the coordinates in a chosen system).
    stored: bool = True

    @property
    def int_bounds(self) -> tuple[int, int]:
        """``(min, max)`` of an integer field (TypeError on a field without both)."""
        if self.min is None or self.max is None:
            raise TypeError(f"{self.name} has no range")
        return int(self.min), int(self.max)


#: Phone numbers: digits, spaces, + - ( ), 3 to 30 characters (empty: none given).
PHONE_PATTERN = r"^[0-9+\-() ]{3,30}$"


def _text(
    name: str, label: str, headers: tuple[str, ...], max_length: int, **kw: Any
) -> VenueField:
    kw.setdefault("default", None if kw.get("required") else "")
    return VenueField(name, "text", label, **_headers(headers), max_length=max_length, **kw)


def _int(
    name: str,
    label: str,
    headers: tuple[str, ...],
    lo: int,
    hi: int,
    default: int | None,
    **kw: Any,
) -> VenueField:
    """An integer in ``[lo, hi]``; ``default`` None: optional, empty meaning no limit."""
    nullable = default is None
    return VenueField(
        name,
        "int",
        label,
        **_headers(headers),
        min=lo,
        max=hi,
        default=default,
        nullable=nullable,
        **kw,
    )


def _other(name: str, kind: Kind, label: str, headers: tuple[str, ...], **kw: Any) -> VenueField:
    return VenueField(name, kind, label, **_headers(headers), **kw)


def _headers(headers: tuple[str, ...]) -> dict[str, Any]:
    """The export's Chinese header and the other headers the import accepts, from
    ``(header, *synonyms)``."""
    return {"zh_header": headers[0] if headers else "", "synonyms": headers[1:]}


_FILES_AND_API: frozenset[Surface] = frozenset({"import", "export", "api"})

#: In the order of the import/export file's columns; DB-only fields last. Each field's
#: headers: the export's Chinese header first, then the others the import accepts.
# fmt: off
FIELDS: tuple[VenueField, ...] = (
    _text("name", N_("Name"), ("名称", "场地名称", "阵地名称", "名字"), 120, required=True),
    _text("unit", N_("Owning unit"), ("所属单位", "单位", "成员单位", "单位名称"), 120,
          required=True, stored=False,
          help=N_("The member unit that runs the venue, by its name.")),
    _other("type", "choice", N_("Type"), ("类型", "场地类型", "阵地类型", "类别"), required=True,
           enum=VenueType),
    _other("lon", "float", N_("Longitude"), ("经度", "longitude", "lng"), required=True,
           min=-180, max=180, stored=False),
    _other("lat", "float", N_("Latitude"), ("纬度", "latitude"), required=True, min=-90, max=90,
           stored=False),
    _other("crs", "choice", N_("Coordinate system"), ("坐标系", "坐标系统"), enum=Crs,
           default=Crs.WGS84.value, stored=False,
           help=N_("The system the coordinates are given in (WGS-84, GCJ-02 or BD-09).")),
    _text("address", N_("Address"), ("地址", "详细地址", "场地地址"), 200),
    _text("street", N_("Street"), ("街道", "所属街道", "街道(乡镇)", "乡镇"), 120,
          surfaces=_FILES_AND_API, stored=False,
          help=N_("Assigned from the location; ignored on import.")),
    _int("capacity_units", N_("Capacity units (parallel bookings, e.g. 3 courts = 3)"),
         ("可并行数量", "数量", "场地数量", "并行数量"), 1, 100, 1),
    _int("max_headcount", N_("Maximum headcount"),
         ("最大人数", "最多容纳人数", "容纳人数", "最大容纳人数", "可容纳人数", "最多人数"),
         1, 10000, None),
    _text("facilities", N_("Facilities"), ("设施", "设施设备", "配套设施"), 2000),
    _text("phone", N_("Contact phone"), ("联系电话", "电话", "预约电话", "联系方式"), 30,
          pattern=PHONE_PATTERN),
    _text("hours", N_("Opening hours"), ("开放时间", "开放时段", "营业时间"), 1000, stored=False,
          help=N_("e.g. 'Mon-Fri 09:00-21:00; Sat 08:00-12:00'")),
    _int("slot_minutes", N_("Slot length"), ("时段长度(分钟)",), 15, 120, 60,
         choices=(15, 30, 60, 120), help=N_("Bookings start and end on this grid (minutes).")),
    _int("min_duration_minutes", N_("Minimum duration (minutes)"), ("最短时长(分钟)",),
         15, 1440, 60, help=N_("A multiple of the slot length.")),
    _int("max_duration_minutes", N_("Maximum duration (minutes)"), ("最长时长(分钟)",),
         15, 1440, 240,
         help=N_("A multiple of the slot length, at least the minimum duration.")),
    _int("max_days_ahead", N_("Bookable up to (days ahead)"), ("最多提前天数",), 1, 365, 30),
    _int("min_notice_minutes", N_("Minimum notice (minutes)"), ("最少提前(分钟)",), 0, 10080, 60),
    _other("requires_approval", "bool", N_("Bookings need approval"),
           ("需要审批", "是否审批", "需审批"), default=False),
    _other("bookable_by", "choice", N_("Who may book"), ("可预约对象", "预约对象"), enum=BookableBy,
           default=BookableBy.MEMBERS.value),
    _int("weekly_quota_hours", N_("Weekly quota per group (hours)"), ("每周限额(小时)",),
         1, 168, None),
    _other("published", "bool", N_("Published on the map"), ("已发布", "发布", "是否发布"),
           default=True),
    _int("hold_hours", N_("Hold a pending request for (hours)"),
         ("审批保留(小时)", "保留时长(小时)", "待审批保留(小时)"), 1, 720, 48,
         help=N_("A request awaiting approval holds its slot this long, then lapses.")),
    _int("cancel_cutoff_minutes", N_("Bookers may cancel until (minutes before the start)"),
         ("取消截止(分钟)", "提前取消(分钟)"), 0, 10080, 120,
         help=N_("Later, only the venue's staff may cancel.")),
    _other("checks_in", "bool", N_("Check groups in"), (), default=False,
           surfaces=frozenset({"db", "form"}),
           help=N_("A booking nobody checked in is marked no-show a while after its start.")),
)
# fmt: on

BY_NAME: dict[str, VenueField] = {f.name: f for f in FIELDS}


def field(name: str) -> VenueField:
    return BY_NAME[name]


def on(surface: Surface) -> tuple[VenueField, ...]:
    """The fields a surface carries, in file order."""
    return tuple(f for f in FIELDS if surface in f.surfaces)


#: The booking rules the engine checks (``booking/loading.venue_rules_of``).
RULE_FIELDS: tuple[str, ...] = (
    "capacity_units",
    "slot_minutes",
    "min_duration_minutes",
    "max_duration_minutes",
    "max_days_ahead",
    "min_notice_minutes",
    "max_headcount",
    "weekly_quota_hours",
)

#: The rules a committee may set for its new venues (``Committee.venue_defaults``; the
#: ``/settings`` page): a new venue starts with them instead of the spec's defaults. The
#: engine's rules but the venue's own size, and who books, approval, hold and cut-off.
COMMITTEE_DEFAULTS: tuple[str, ...] = (
    *(name for name in RULE_FIELDS if name not in ("capacity_units", "max_headcount")),
    "requires_approval",
    "bookable_by",
    "hold_hours",
    "cancel_cutoff_minutes",
)

#: The venue's API properties besides the row's fields (``operations/venues``).
API_EXTRA: tuple[str, ...] = (
    "id",
    "type_label",
    "unit_id",
    "street_approximate",
    "retired",
    "distance_m",
    "url",
)


def _sql_list(values: tuple[int, ...] | list[str]) -> str:
    return ", ".join(str(v) if isinstance(v, int) else f"'{v}'" for v in values)


#: The fields the venue's row holds as the files and the API show them, copied as they are by
#: the one serializer (``operations/venues.venue_values``).
STORED: tuple[str, ...] = tuple(f.name for f in on("export") if f.stored)


def check_sql(name: str, column: str | None = None) -> str:
    """The database check of one field's range: ``capacity_units BETWEEN 1 AND 100``; a
    nullable field allows NULL; a field with choices lists them."""
    f = BY_NAME[name]
    col = column or name
    if f.choices:
        cond = f"{col} IN ({_sql_list(f.choices)})"
    elif f.enum is not None:
        cond = f"{col} IN ({_sql_list([m.value for m in f.enum])})"
    else:
        lo, hi = f.min, f.max
        cond = f"{col} BETWEEN {lo:g} AND {hi:g}"
    return f"{col} IS NULL OR {cond}" if f.nullable else cond


__all__ = [
    "API_EXTRA",
    "BY_NAME",
    "COMMITTEE_DEFAULTS",
    "FIELDS",
    "PHONE_PATTERN",
    "RULE_FIELDS",
    "STORED",
    "VenueField",
    "check_sql",
    "field",
    "on",
]
