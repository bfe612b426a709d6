"""Ticket lifecycle: statuses, the one transition table, and the event that records every change.

Every status change goes through `transition()`, so the history is complete and illegal moves are impossible
wherever they are attempted (engine, staff dialogs, CLI, jobs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.messages import ChatRef


class Status(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    REOPENED = "reopened"


class Action(StrEnum):
    CREATE = "create"
    ASSIGN = "assign"
    TAKE = "take"
    COMMENT = "comment"
    RESOLVE = "resolve"
    CLOSE = "close"
    REJECT = "reject"
    REOPEN = "reopen"
    REROUTE = "reroute"
    RATE = "rate"
    OVERDUE = "overdue"
    RETURN = "return"
    """Staff say the ticket is not theirs (wrong organisation): back to the dispatcher's queue."""
    PLACE = "place"
    """The dispatcher set the ticket's place (a typed address that could not be checked, a wrong pin)."""


CLOSED_STATUSES = frozenset({Status.CLOSED, Status.REJECTED})
"""Open311 view: closed = {closed, rejected}, open = the rest."""

# (from, action) -> to. Actions that keep the status (comment, overdue) are allowed from any open state.
TRANSITIONS: dict[tuple[Status | None, Action], Status] = {
    (None, Action.CREATE): Status.NEW,
    (Status.NEW, Action.ASSIGN): Status.ASSIGNED,
    (Status.ASSIGNED, Action.REROUTE): Status.ASSIGNED,
    (Status.NEW, Action.REJECT): Status.REJECTED,
    (Status.ASSIGNED, Action.TAKE): Status.IN_PROGRESS,
    (Status.ASSIGNED, Action.REJECT): Status.REJECTED,
    (Status.ASSIGNED, Action.RESOLVE): Status.RESOLVED,
    (Status.IN_PROGRESS, Action.RESOLVE): Status.RESOLVED,
    (Status.IN_PROGRESS, Action.REJECT): Status.REJECTED,
    (Status.IN_PROGRESS, Action.REROUTE): Status.ASSIGNED,
    (Status.RESOLVED, Action.CLOSE): Status.CLOSED,
    (Status.RESOLVED, Action.RATE): Status.CLOSED,
    (Status.RESOLVED, Action.REOPEN): Status.REOPENED,
    (Status.REOPENED, Action.TAKE): Status.IN_PROGRESS,
    (Status.REOPENED, Action.RESOLVE): Status.RESOLVED,
    (Status.REOPENED, Action.REJECT): Status.REJECTED,
    (Status.REOPENED, Action.REROUTE): Status.ASSIGNED,
    (Status.ASSIGNED, Action.RETURN): Status.NEW,
    (Status.IN_PROGRESS, Action.RETURN): Status.NEW,
    (Status.REOPENED, Action.RETURN): Status.NEW,
    # A resident may refute the fix within the reopen window even after the ticket closed unrated.
    (Status.CLOSED, Action.REOPEN): Status.REOPENED,
}

NON_TRANSITIONS = frozenset({Action.COMMENT, Action.OVERDUE, Action.PLACE})


class IllegalTransition(ValueError):
    def __init__(self, status: Status | None, action: Action) -> None:
        super().__init__(
            f"cannot {action.value} a ticket that is {status.value if status else 'not created'}"
        )
        self.status = status
        self.action = action


def next_status(status: Status | None, action: Action) -> Status:
    """The status after `action`, or IllegalTransition. Comments, overdue marks and a new place keep an open
    status."""
    if action in NON_TRANSITIONS:
        if status is None or status in CLOSED_STATUSES:
            raise IllegalTransition(status, action)
        return status
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition(status, action) from None


def is_open(status: Status) -> bool:
    return status not in CLOSED_STATUSES


@dataclass(slots=True)
class TicketEvent:
    """One line of a ticket's history: who did what, when, from which status to which."""

    action: Action
    at: datetime
    actor: str
    from_status: Status | None
    to_status: Status
    comment: str = ""
    photos: tuple[str, ...] = ()
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    """What a resident (or a partner system) reports: category, place, description, photos."""

    category: str
    subcategory: str | None
    lat: float | None
    lon: float | None
    address: str
    location_source: str
    description: str
    photos: tuple[str, ...]
    author: ChatRef
    language: str


@dataclass(slots=True)
class Ticket:
    number: int
    category: str
    subcategory: str | None
    lat: float | None
    lon: float | None
    address: str
    location_source: str
    description: str
    photos: tuple[str, ...]
    author_channel: str
    author_chat_id: str
    author_user_id: str
    organisation: str | None
    status: Status
    created_at: datetime
    deadline: datetime | None
    rating: int | None = None
    language: str = "ru"
    events: list[TicketEvent] = field(default_factory=list)
    supporters: int = 0
    """Residents who joined the ticket as the same problem ('me too'), the author not counted."""
    supporter_chats: tuple[tuple[ChatRef, str], ...] = ()
    """Those supporters' chats and languages: they hear about the ticket's progress with its author."""
    taken_by: int | None = None
    """Id of the staff member who took the ticket (None when nobody has it)."""
    resolved_at: datetime | None = None
    overdue_notified: bool = False
    resolution_photos: tuple[str, ...] = ()
    hidden_photos: frozenset[str] = frozenset()
    """Photos staff hid (a face, a plate): shown to staff only, never in a resident's or public view or
    export (`public_photos`)."""

    def public_photos(self, photos: tuple[str, ...]) -> tuple[str, ...]:
        """`photos` without the hidden ones: what any resident-facing, public or export path may show."""
        return tuple(sha for sha in photos if sha not in self.hidden_photos) if self.hidden_photos else photos

    @property
    def author(self) -> ChatRef:
        return ChatRef(self.author_channel, self.author_chat_id, self.author_user_id)
