"""Domain exceptions, raised by the core and operations and mapped to HTTP in one place
(``mapservice.web.errors``). Each carries a stable ``code`` and the values a message needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class DomainError(Exception):
    """Base: ``code`` names the fault; ``params`` fill the translated message."""

    status = 400

    def __init__(self, code: str, message: str = "", **params: object) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.params = params


class NotFound(DomainError):
    status = 404


class NotAllowed(DomainError):
    """The actor may see the object but may not do this to it."""

    status = 403


class TooMany(DomainError):
    """Too many requests of this kind from one place; try again later."""

    status = 429


class ValidationFailed(DomainError):
    """Input broke a rule; ``fields`` maps field names to messages (already translated)."""

    status = 422

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__("validation_failed", message)
        self.fields = fields or {}


class ImportRejected(DomainError):
    """A bulk import had bad rows; nothing was written. ``errors`` lists every one."""

    status = 422

    def __init__(self, errors: list[str]) -> None:
        super().__init__("import_rejected", "; ".join(errors[:3]))
        self.errors = errors


class RuleViolation(DomainError):
    """A booking request broke one or more rules. ``violations`` lists each, with its code,
    the field it concerns and a translated message naming the rule and the limit."""

    status = 422

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__(violations[0].code, "; ".join(v.message for v in violations))
        self.violations = violations
        self.fields = {v.field: v.message for v in reversed(violations)}


class BookingConflict(DomainError):
    """The time is taken: not enough capacity units are free for the whole request.
    ``conflicts`` are the occupied intervals (with details only for those allowed to see
    them). ``alternatives`` are the engine's proposals: a plain value, None until whoever
    answers the refusal computes them with :meth:`resolve` (reading it never queries)."""

    status = 409

    def __init__(
        self,
        message: str,
        conflicts: list[Any],
        alternatives: Any = None,
        suggest: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__("conflict", message)
        self.conflicts = conflicts
        self.alternatives = alternatives
        #: Computes the alternatives with a given session. Kept apart so the edge first ends
        #: the transaction (releasing the venue's lock) and then computes them, reading.
        self.suggest = suggest

    def resolve(self, session: Any) -> Any:
        """Compute the alternatives now (once), reading through ``session``."""
        if self.alternatives is None and self.suggest is not None:
            self.alternatives = self.suggest(session)
        return self.alternatives


@dataclass(frozen=True)
class Violation:
    code: str
    field: str
    message: str


class ClosureOverBookings(DomainError):
    """A closure would cover bookings still active (pending or confirmed): nothing was
    written. ``bookings`` lists them; ``changed`` says the list differs from the one the
    owner confirmed (a booking came or went meanwhile)."""

    status = 409

    def __init__(self, message: str, bookings: list[Any], *, changed: bool = False) -> None:
        super().__init__("closure_over_bookings", message)
        self.bookings = bookings
        self.changed = changed
