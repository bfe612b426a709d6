"""What a lifecycle change needs besides the ticket, passed from the dialog or job to `lifecycle.apply`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.municipality import Municipality
from core.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class Tx:
    """What a change needs besides the ticket: the open transaction, the city and the time."""

    store: UnitOfWork
    municipality: Municipality
    now: datetime
