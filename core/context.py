"""What one step of a dialog sees: the open transaction, the city, the chat's state, the input, the time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.geo import Lookup
from core.messages import Button, ChatRef, Incoming, Reply
from core.municipality import Municipality
from core.personal_data import NO_CONSENT, PrivacyPolicy
from core.ports import UnitOfWork
from core.texts import date, t


class Retry(Exception):
    """Raised by a step's parser: the input was of the right kind but not acceptable; say why, re-ask."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class Refusal(Exception):
    """Raised wherever a dialog finds it cannot act (not staff, another organisation's ticket, a ticket that
    moved on, not the resident's own): `replies` say why. The engine answers with them; what was written
    before the refusal is kept, as when a function returned the refusal."""

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__(replies[0].text if replies else "")
        self.replies = replies


@dataclass(slots=True)
class Ctx:
    store: UnitOfWork
    municipality: Municipality
    state: dict[str, Any]
    chat: ChatRef
    incoming: Incoming
    now: datetime
    geocoding: bool = False
    """Whether a geocoder is configured: a step may then ask for a `Lookup` (run after the transaction)."""
    lookups: list[Lookup] = field(default_factory=list)
    city_language: str = "ru"
    """The municipality's language: addresses are stored in it for staff, whatever the resident speaks."""
    privacy: PrivacyPolicy = NO_CONSENT
    """The engine's personal-data policy: whether the consent notice gates reports, the retention period."""
    web_url: str = ""
    """Where the city's web is reached from outside (sign-in links from `/web`)."""

    @property
    def lang(self) -> str:
        return str(self.state.get("lang", "ru"))

    @property
    def slots(self) -> dict[str, Any]:
        return self.state.setdefault("slots", {})

    def t(self, key: str, **params: Any) -> str:
        return t(self.lang, key, **params)

    def reply(self, key: str, *, buttons: tuple[tuple[Button, ...], ...] = (), **params: Any) -> Reply:
        return Reply(text=self.t(key, **params), buttons=buttons, language=self.lang)

    def local(self, moment: datetime | None, kind: str = "date") -> str:
        """A moment in the city's time zone, written the resident's way: `date`, `datetime` or `day`."""
        if moment is None:
            return "—"
        return date(self.lang, moment.astimezone(ZoneInfo(self.municipality.timezone)), kind)
