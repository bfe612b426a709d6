"""Ticket policy: which statuses wait on an organisation, the time windows, the reject reasons, "overdue".

One home for each rule, so the staff card, the queue, the overdue job, the statistics and the storage's
queries cannot drift apart. Working-day deadlines themselves are computed in `core.domain.calendar`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from core.domain.tickets import Status

WAITING = frozenset({Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS, Status.REOPENED})
"""Statuses in which a ticket waits on the city (a dispatcher or an organisation): queue, overdue mark."""

REOPEN_WINDOW = timedelta(days=14)
"""How long after the resolution a resident may say "not fixed"."""

AUTOCLOSE_AFTER = timedelta(days=7)
"""A resolved ticket the resident did not rate closes by itself after this long."""

REJECT_REASONS = ("wrong_org", "duplicate", "not_municipal", "spam")
"""The catalogue staff choose from when rejecting (texts `notify.reason.*`)."""


class Deadlined(Protocol):
    """Anything with a status and a deadline: a `Ticket`, a queue `TicketSummary`."""

    @property
    def status(self) -> Status: ...

    @property
    def deadline(self) -> datetime | None: ...


def overdue(status: str, deadline: datetime | None, now: datetime) -> bool:
    """Still waiting and past the deadline at `now` (at the deadline itself: not yet). `status` may be the
    stored text: `Status` is a `str` enum."""
    return status in WAITING and deadline is not None and deadline < now


def is_overdue(ticket: Deadlined, now: datetime) -> bool:
    return overdue(ticket.status, ticket.deadline, now)
