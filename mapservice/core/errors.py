"""Domain exceptions, raised by the core and operations and mapped to HTTP in one place
(``mapservice.web.errors``). Each carries a stable ``code`` and the values a message needs."""

from __future__ import annotations


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
