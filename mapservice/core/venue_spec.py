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
from typing import Literal

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
    zh_header: str
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

#: In the order of the import/export file's columns; DB-only fields last.
FIELDS: tuple[VenueField, ...] = (
    VenueField(
        "name",
        "text",
        N_("Name"),
        "名称",
        synonyms=("场地名称", "阵地名称", "名字"),
        required=True,
        max_length=120,
    ),
    VenueField(
        "unit",
        "text",
        N_("Owning unit"),
        "所属单位",
        help=N_("The member unit that runs the venue, by its name."),
        synonyms=("单位", "成员单位", "单位名称"),
        required=True,
        max_length=120,
        stored=False,
    ),
    VenueField(
        "type",
        "choice",
        N_("Type"),
        "类型",
        synonyms=("场地类型", "阵地类型", "类别"),
        required=True,
        enum=VenueType,
    ),
    VenueField(
        "lon",
        "float",
        N_("Longitude"),
        "经度",
        synonyms=("longitude", "lng"),
        required=True,
        min=-180,
        max=180,
        stored=False,
    ),
    VenueField(
        "lat",
        "float",
        N_("Latitude"),
        "纬度",
        synonyms=("latitude",),
        required=True,
        min=-90,
        max=90,
        stored=False,
    ),
    VenueField(
        "crs",
        "choice",
        N_("Coordinate system"),
        "坐标系",
        help=N_("The system the coordinates are given in (WGS-84, GCJ-02 or BD-09)."),
        synonyms=("坐标系统",),
        default=Crs.WGS84.value,
        enum=Crs,
        stored=False,
    ),
    VenueField(
        "address",
        "text",
        N_("Address"),
        "地址",
        synonyms=("详细地址", "场地地址"),
        default="",
        max_length=200,
    ),
    VenueField(
        "street",
        "text",
        N_("Street"),
        "街道",
        help=N_("Assigned from the location; ignored on import."),
        synonyms=("所属街道", "街道(乡镇)", "乡镇"),
        default="",
        max_length=120,
        surfaces=frozenset({"import", "export", "api"}),
        stored=False,
    ),
    VenueField(
        "capacity_units",
        "int",
        N_("Capacity units (parallel bookings, e.g. 3 courts = 3)"),
        "可并行数量",
        synonyms=("数量", "场地数量", "并行数量"),
        default=1,
        min=1,
        max=100,
    ),
    VenueField(
        "max_headcount",
        "int",
        N_("Maximum headcount"),
        "最大人数",
        synonyms=("最多容纳人数", "容纳人数", "最大容纳人数", "可容纳人数", "最多人数"),
        nullable=True,
        min=1,
        max=10000,
    ),
    VenueField(
        "facilities",
        "text",
        N_("Facilities"),
        "设施",
        synonyms=("设施设备", "配套设施"),
        default="",
        max_length=2000,
    ),
    VenueField(
        "phone",
        "text",
        N_("Contact phone"),
        "联系电话",
        synonyms=("电话", "预约电话", "联系方式"),
        default="",
        max_length=30,
        pattern=PHONE_PATTERN,
    ),
    VenueField(
        "hours",
        "text",
        N_("Opening hours"),
        "开放时间",
        help=N_("e.g. 'Mon-Fri 09:00-21:00; Sat 08:00-12:00'"),
        synonyms=("开放时段", "营业时间"),
        default="",
        max_length=1000,
        stored=False,
    ),
    VenueField(
        "slot_minutes",
        "int",
        N_("Slot length"),
        "时段长度(分钟)",
        help=N_("Bookings start and end on this grid (minutes)."),
        default=60,
        min=15,
        max=120,
        choices=(15, 30, 60, 120),
    ),
    VenueField(
        "min_duration_minutes",
        "int",
        N_("Minimum duration (minutes)"),
        "最短时长(分钟)",
        help=N_("A multiple of the slot length."),
        default=60,
        min=15,
        max=1440,
    ),
    VenueField(
        "max_duration_minutes",
        "int",
        N_("Maximum duration (minutes)"),
        "最长时长(分钟)",
        help=N_("A multiple of the slot length, at least the minimum duration."),
        default=240,
        min=15,
        max=1440,
    ),
    VenueField(
        "max_days_ahead",
        "int",
        N_("Bookable up to (days ahead)"),
        "最多提前天数",
        default=30,
        min=1,
        max=365,
    ),
    VenueField(
        "min_notice_minutes",
        "int",
        N_("Minimum notice (minutes)"),
        "最少提前(分钟)",
        default=60,
        min=0,
        max=10080,
    ),
    VenueField(
        "requires_approval",
        "bool",
        N_("Bookings need approval"),
        "需要审批",
        synonyms=("是否审批", "需审批"),
        default=False,
    ),
    VenueField(
        "bookable_by",
        "choice",
        N_("Who may book"),
        "可预约对象",
        synonyms=("预约对象",),
        default=BookableBy.MEMBERS.value,
        enum=BookableBy,
    ),
    VenueField(
        "weekly_quota_hours",
        "int",
        N_("Weekly quota per group (hours)"),
        "每周限额(小时)",
        nullable=True,
        min=1,
        max=168,
    ),
    VenueField(
        "published",
        "bool",
        N_("Published on the map"),
        "已发布",
        synonyms=("发布", "是否发布"),
        default=True,
    ),
    VenueField(
        "hold_hours",
        "int",
        N_("Hold a pending request for (hours)"),
        "",
        default=48,
        min=1,
        max=720,
        surfaces=frozenset({"db"}),
    ),
    VenueField(
        "cancel_cutoff_minutes",
        "int",
        N_("Bookers may cancel until (minutes before the start)"),
        "",
        default=120,
        min=0,
        max=10080,
        surfaces=frozenset({"db"}),
    ),
)

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
    "FIELDS",
    "PHONE_PATTERN",
    "RULE_FIELDS",
    "STORED",
    "VenueField",
    "check_sql",
    "field",
    "on",
]
