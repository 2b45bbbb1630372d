"""Accounts. A user has exactly one role: committee admin, secretary of one unit, or booker
for one or more groups; the database enforces that the matching unit/group is set.

A booker's groups are the rows of ``user_groups`` (:attr:`User.groups`); ``users.group_id``
stays as its *default* group — one of them, the one its booking form starts with — so that
"a booker has a group" remains a check constraint. :attr:`User.group_ids` is what every
permission reads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Select,
    String,
    Table,
    bindparam,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship
from sqlalchemy.orm.attributes import set_committed_value

from mapservice.core.vocab import Role
from mapservice.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from mapservice.models.committees import Committee
    from mapservice.models.units import Group, Unit


user_groups = Table(
    "user_groups",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True),
)

# A user's groups as :attr:`User.groups` orders them (built at first use: User.group_ids).
_GROUPS_OF: list[Select[Group]] = []


#: Where :meth:`User.know_group_ids` keeps what it was told (a plain attribute, not mapped).
_KNOWN_GROUP_IDS = "_mapservice_known_group_ids"


def _groups_of() -> Select[Group]:
    if not _GROUPS_OF:
        from mapservice.models.units import Group

        _GROUPS_OF.append(
            select(Group)
            .join(user_groups, user_groups.c.group_id == Group.id)
            .where(user_groups.c.user_id == bindparam("user_id"))
            .order_by(Group.name)
        )
    return _GROUPS_OF[0]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(role = 'committee_admin' AND unit_id IS NULL AND group_id IS NULL)"
            " OR (role = 'unit_secretary' AND unit_id IS NOT NULL AND group_id IS NULL)"
            " OR (role = 'booker' AND group_id IS NOT NULL AND unit_id IS NULL)",
            name="role_scope",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"), index=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(60), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    # Booking notices are e-mailed here too when SMTP is configured (empty: in-app only).
    email: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    committee: Mapped[Committee] = relationship()
    unit: Mapped[Unit | None] = relationship()
    #: The booker's default group (one of :attr:`groups`).
    group: Mapped[Group | None] = relationship()
    #: The groups a booker books for (loaded with the user: every permission check reads them).
    groups: Mapped[list[Group]] = relationship(
        secondary=user_groups, lazy="selectin", order_by="Group.name"
    )

    # Flask-Login protocol (kept here so the model needs no Flask import)
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.COMMITTEE_ADMIN.value

    @property
    def is_secretary(self) -> bool:
        return self.role == Role.UNIT_SECRETARY.value

    @property
    def is_booker(self) -> bool:
        return self.role == Role.BOOKER.value

    def know_group_ids(self, ids: frozenset[int]) -> None:
        """Tell this user its groups' ids as a query that read them with something else found
        them (the booking path's venue query: :func:`mapservice.booking.rows.venue_and_group`),
        so :attr:`group_ids` needs no query of its own. Loaded groups still win."""
        self.__dict__[_KNOWN_GROUP_IDS] = ids

    @property
    def knows_group_ids(self) -> bool:
        """Whether :attr:`group_ids` is answered without a query (the groups loaded, or told)."""
        return "groups" in self.__dict__ or _KNOWN_GROUP_IDS in self.__dict__

    @property
    def group_ids(self) -> frozenset[int]:
        """The groups this user books for as their booker (none for any other role)."""
        if not self.is_booker:
            return frozenset()
        if "groups" not in self.__dict__:
            known: frozenset[int] | None = self.__dict__.get(_KNOWN_GROUP_IDS)
            if known is not None:
                return known
        session = object_session(self)
        if "groups" not in self.__dict__ and session is not None and self.id is not None:
            # Not loaded (the API's token check leaves them: operations.tokens._BY_HASH):
            # loaded here by a statement built once, as the relationship would load them
            # (its lazy loader builds its statement on every load: measured, about as much
            # CPU as a booking's other reads together).
            found = session.scalars(_groups_of(), {"user_id": self.id}).all()
            set_committed_value(self, "groups", list(found))
        return frozenset(g.id for g in self.groups)
