"""What the API's endpoint modules share: the errors they may answer and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

READ_ERRORS = (401, 403, 404, 422, 429)
WRITE_ERRORS = (400, 401, 403, 404, 409, 422, 429)


def utcnow() -> datetime:
    return datetime.now(UTC)
