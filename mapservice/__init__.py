"""mapservice: the shared-venue "one map" (阵地共享一张图) for Youth League work committees."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    """The application factory (imported lazily so the core can be used without Flask)."""
    from mapservice.app import create_app as _create

    return _create(config)
