"""Time-based lifecycle jobs, each one transaction with `now` given (tests never sleep):
auto-close of resolved tickets left unrated, and the once-only overdue mark with its notifications."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from core import lifecycle
from core.domain.policy import AUTOCLOSE_AFTER, is_overdue
from core.domain.tickets import Action, IllegalTransition, Status, Ticket
from core.lifecycle import Tx
from core.municipality import Municipality
from core.ports import UnitOfWork

BATCH = 500


def _each(tx: Tx, numbers: Sequence[int], still: Callable[[Ticket], bool], action: Action) -> list[int]:
    """Apply `action` to each ticket that, once locked, still qualifies; skip those that moved on."""
    done: list[int] = []
    for number in numbers:
        ticket = tx.store.tickets.lock(number)
        if ticket is None or not still(ticket):
            continue
        try:
            lifecycle.apply(tx, ticket, action, "system")
        except (IllegalTransition, lifecycle.Changed):
            continue
        done.append(number)
    return done


def auto_close(store: UnitOfWork, municipality: Municipality, now: datetime, limit: int = BATCH) -> list[int]:
    """Close tickets resolved more than AUTOCLOSE_AFTER ago that the resident did not rate."""
    tx = Tx(store, municipality, now)
    cutoff = now - AUTOCLOSE_AFTER
    return _each(
        tx,
        store.tickets.to_autoclose(cutoff, limit),
        lambda t: t.status == Status.RESOLVED and t.resolved_at is not None and t.resolved_at <= cutoff,
        Action.CLOSE,
    )


def mark_overdue(
    store: UnitOfWork, municipality: Municipality, now: datetime, limit: int = BATCH
) -> list[int]:
    """Mark tickets past their deadline, once, telling the organisation's staff and the dispatchers."""
    tx = Tx(store, municipality, now)
    return _each(
        tx,
        store.tickets.newly_overdue(now, limit),
        lambda t: is_overdue(t, now) and not t.overdue_notified,
        Action.OVERDUE,
    )


def anonymise_expired(store: UnitOfWork, now: datetime, retention_days: int, limit: int = BATCH) -> list[int]:
    """Retention: tickets closed or rejected more than `retention_days` ago stop naming their author (the
    same anonymisation as `/forget`); 0 days keeps them as they are."""
    if retention_days <= 0:
        return []
    before = now - timedelta(days=retention_days)
    store.residents.forget_removed_staff(before, now)
    anonymised = store.residents.anonymise_closed(before, now, limit)
    store.residents.prune_idle(before, now)
    return anonymised


def run_timers(
    store: UnitOfWork, municipality: Municipality, now: datetime, retention_days: int = 0
) -> dict[str, list[int]]:
    return {
        "closed": auto_close(store, municipality, now),
        "overdue": mark_overdue(store, municipality, now),
        "anonymised": anonymise_expired(store, now, retention_days),
    }
