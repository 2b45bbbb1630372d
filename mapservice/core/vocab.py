"""Domain vocabulary: the closed sets of values the whole service speaks in.

Each enum member's value is the stable English key used in the database, CSV files and the
API; ``label(lang)`` gives the human name in Chinese (default) or English. Importers accept
either the key or either label, so a spreadsheet typed by hand in Chinese imports as well as a
file we exported ourselves.
"""

from __future__ import annotations

from enum import StrEnum


class _Labelled(StrEnum):
    """A StrEnum whose members carry a Chinese and an English label."""

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:  # pragma: no cover - overridden
        return {}

    def label(self, lang: str = "zh") -> str:
        zh, en = self._labels()[self.value]
        return en if lang.startswith("en") else zh

    @classmethod
    def parse(cls, text: str) -> _Labelled | None:
        """Return the member named by a key or by its Chinese or English label, else None."""

        def norm(s: str) -> str:
            return "".join(c for c in s.strip().lower() if c not in "-_ ")

        needle = norm(text)
        for key, (zh, en) in cls._labels().items():
            if needle in (norm(key), norm(zh), norm(en)):
                return cls(key)
        return None

    @classmethod
    def choices(cls, lang: str = "zh") -> list[tuple[str, str]]:
        return [(m.value, m.label(lang)) for m in cls]


class VenueType(_Labelled):
    BADMINTON = "badminton"
    TABLE_TENNIS = "table_tennis"
    BASKETBALL = "basketball"
    FOOTBALL = "football"
    GYM = "gym"
    YOGA_DANCE = "yoga_dance"
    MEETING_ROOM = "meeting_room"
    LECTURE_HALL = "lecture_hall"
    READING_ROOM = "reading_room"
    PATRIOTIC_BASE = "patriotic_base"
    YOUTH_HOME = "youth_home"
    ENTREPRENEURSHIP_BASE = "entrepreneurship_base"
    SOCIAL_PRACTICE_BASE = "social_practice_base"
    PUBLIC_LAND = "public_land"
    OTHER = "other"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "badminton": ("羽毛球场", "Badminton court"),
            "table_tennis": ("乒乓球室", "Table tennis"),
            "basketball": ("篮球场", "Basketball court"),
            "football": ("足球场", "Football pitch"),
            "gym": ("健身房", "Gym"),
            "yoga_dance": ("瑜伽/舞蹈室", "Yoga / dance room"),
            "meeting_room": ("会议室", "Meeting room"),
            "lecture_hall": ("报告厅", "Lecture hall"),
            "reading_room": ("阅览室", "Reading room"),
            "patriotic_base": ("爱国主义教育基地", "Patriotic education base"),
            "youth_home": ("青年之家", "Youth home"),
            "entrepreneurship_base": ("创业孵化基地", "Entrepreneurship base"),
            "social_practice_base": ("社会实践基地", "Social practice base"),
            "public_land": ("户外/公益用地", "Outdoor / public-welfare land"),
            "other": ("其他", "Other"),
        }


class UnitKind(_Labelled):
    GOVERNMENT = "government"
    SOE = "soe"
    FINANCIAL = "financial"
    SCHOOL = "school"
    COMMUNITY = "community"
    TWO_NEW = "two_new"
    OTHER = "other"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "government": ("机关单位", "Government organ"),
            "soe": ("国有企业", "State-owned enterprise"),
            "financial": ("金融机构", "Financial institution"),
            "school": ("学校", "School"),
            "community": ("社区", "Community"),
            "two_new": ("两新组织", "Two-new organisation"),
            "other": ("其他", "Other"),
        }


class UnitStatus(_Labelled):
    APPLIED = "applied"
    ACTIVE = "active"
    SUSPENDED = "suspended"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "applied": ("申请中", "Applied"),
            "active": ("已准入", "Active"),
            "suspended": ("已暂停", "Suspended"),
        }


class ApplicationStatus(_Labelled):
    """Where a unit's application to join (成员准入) stands."""

    PENDING = "pending"
    ADMITTED = "admitted"
    DECLINED = "declined"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "pending": ("待审核", "Pending"),
            "admitted": ("已准入", "Admitted"),
            "declined": ("未通过", "Declined"),
        }


class Role(_Labelled):
    COMMITTEE_ADMIN = "committee_admin"
    UNIT_SECRETARY = "unit_secretary"
    BOOKER = "booker"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "committee_admin": ("青工委管理员", "Committee admin"),
            "unit_secretary": ("成员单位团委书记", "Unit secretary"),
            "booker": ("预约人", "Booker"),
        }


class BookableBy(_Labelled):
    MEMBERS = "members"
    PAIRED = "paired"
    PUBLIC = "public"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "members": ("全体成员单位", "All member units"),
            "paired": ("结对单位", "Paired units"),
            "public": ("公众", "The public"),
        }


class Crs(_Labelled):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "wgs84": ("WGS-84（GPS/天地图）", "WGS-84 (GPS / Tianditu)"),
            "gcj02": ("GCJ-02（高德/腾讯）", "GCJ-02 (AMap / Tencent)"),
            "bd09": ("BD-09（百度）", "BD-09 (Baidu)"),
        }


class BookingStatus(_Labelled):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "pending": ("待审批", "Pending"),
            "confirmed": ("已确认", "Confirmed"),
            "declined": ("已拒绝", "Declined"),
            "cancelled": ("已取消", "Cancelled"),
            "completed": ("已签到", "Completed"),
            "no_show": ("未到场", "No-show"),
        }


class ActivityKind(_Labelled):
    """What an activity of the year's list (活动清单) is: the one vocabulary of activities and
    of the plan's entries (`core/rotation`, `models/plans`), one label table."""

    READING_CLUB = "reading_club"
    SOCIAL_MIXER = "social_mixer"
    SALON = "salon"
    VOLUNTEER = "volunteer"
    SPORTS = "sports"
    STUDY = "study"
    OTHER = "other"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "reading_club": ("青年读书会", "Reading club"),
            "social_mixer": ("交友联谊", "Social mixer"),
            "salon": ("创业沙龙", "Entrepreneurship salon"),
            "volunteer": ("志愿服务", "Volunteering"),
            "sports": ("文体活动", "Sports"),
            "study": ("学习交流", "Study"),
            "other": ("其他", "Other"),
        }


class ActivityStatus(_Labelled):
    """draft → open → full → closed → done, or cancelled (with a reason)."""

    DRAFT = "draft"
    OPEN = "open"
    FULL = "full"
    CLOSED = "closed"
    DONE = "done"
    CANCELLED = "cancelled"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "draft": ("草稿", "Draft"),
            "open": ("报名中", "Open"),
            "full": ("已满员", "Full"),
            "closed": ("报名截止", "Closed"),
            "done": ("已结束", "Done"),
            "cancelled": ("已取消", "Cancelled"),
        }


class SignUpState(_Labelled):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    WITHDRAWN = "withdrawn"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "confirmed": ("已确认", "Confirmed"),
            "waitlisted": ("候补中", "Waitlisted"),
            "withdrawn": ("已退出", "Withdrawn"),
        }
