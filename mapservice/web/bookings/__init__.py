"""Booking pages, one blueprint (``bookings``) over several modules: the venue page's week
view and booking form (``form``), "my bookings" (``mine``), cancel and reschedule
(``changes``), the owning unit's queue and calendar (``owners``), the phone booking screen
(``phone``), in-app notifications,
their e-mail and iCalendar feeds (``inbox``); what they share is in ``common``.

Routes parse the form, call one operation or engine call and render; the engine judges every
rule."""

from __future__ import annotations

from typing import Any

from flask import Flask

from mapservice.web.bookings import changes, inbox, mine, owners, phone
from mapservice.web.bookings.common import bp, local_dt, units_text, when_text
from mapservice.web.bookings.form import booking_form, booking_panel, booking_prefill

__all__ = ["booking_form", "booking_panel", "booking_prefill", "init_app"]
ROUTES = (changes, inbox, mine, owners, phone)  # imported for their routes on ``bp``


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    inbox._mail_on_commit(app)

    @app.context_processor
    def _booking_helpers() -> dict[str, Any]:
        return {
            "booking_panel": booking_panel,
            "unread_count": inbox.unread_count,
            "units_text": units_text,
            "when_text": when_text,
            "local_dt": local_dt,
            "sees_caller": phone.sees_caller,
        }
