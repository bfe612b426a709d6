"""How tickets are named to people: statuses, categories, places, organisations, reject reasons, and moments
in the city's time zone — in the reader's language. Pure functions of the ticket and the city."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.domain.tickets import Status, Ticket
from core.municipality import Municipality
from core.texts import date, t


def local(municipality: Municipality, moment: datetime | None, fmt: str = "%d.%m.%Y") -> str:
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(municipality.timezone)).strftime(fmt)


def local_date(municipality: Municipality, lang: str, moment: datetime | None, kind: str = "date") -> str:
    """A moment in the city's time zone, written the reader's way (04.12.2026 / 4 Dec 2026)."""
    if moment is None:
        return "—"
    return date(lang, moment.astimezone(ZoneInfo(municipality.timezone)), kind)


def category_label(municipality: Municipality, lang: str, ticket: Ticket) -> str:
    parts = [municipality.category(code) for code in (ticket.category, ticket.subcategory) if code]
    return " → ".join(c.name(lang) for c in parts if c is not None)


def place_label(lang: str, ticket: Ticket) -> str:
    if ticket.address:
        return ticket.address
    if ticket.lat is not None and ticket.lon is not None:
        return t(lang, "report.review.point", lat=f"{ticket.lat:.5f}", lon=f"{ticket.lon:.5f}")
    return "—"


def organisation_name(municipality: Municipality, lang: str, code: str | None) -> str:
    org = municipality.organisation(code)
    return org.name(lang) if org is not None else (code or "—")


def status_label(lang: str, status: Status) -> str:
    return t(lang, f"status.{status.value}")


def reason_text(lang: str, data: dict[str, str]) -> str:
    reason = data.get("reason", "")
    if reason == "duplicate":
        return t(lang, "notify.reason.duplicate", duplicate=data.get("duplicate_of", "?"))
    return t(lang, f"notify.reason.{reason}")
