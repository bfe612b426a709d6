"""The ticket lifecycle table: every legal move, and the illegal ones refused."""

from __future__ import annotations

import pytest

from core.domain.tickets import (
    CLOSED_STATUSES,
    TRANSITIONS,
    Action,
    IllegalTransition,
    Status,
    is_open,
    next_status,
)


def test_happy_path() -> None:
    status = next_status(None, Action.CREATE)
    for action, expected in [
        (Action.ASSIGN, Status.ASSIGNED),
        (Action.TAKE, Status.IN_PROGRESS),
        (Action.COMMENT, Status.IN_PROGRESS),
        (Action.RESOLVE, Status.RESOLVED),
        (Action.REOPEN, Status.REOPENED),
        (Action.TAKE, Status.IN_PROGRESS),
        (Action.RESOLVE, Status.RESOLVED),
        (Action.RATE, Status.CLOSED),
    ]:
        status = next_status(status, action)
        assert status == expected


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (None, Action.TAKE),
        (Status.NEW, Action.RESOLVE),
        (Status.REJECTED, Action.REOPEN),
        (Status.CLOSED, Action.COMMENT),
        (Status.REJECTED, Action.TAKE),
        (Status.IN_PROGRESS, Action.RATE),
        (Status.ASSIGNED, Action.REOPEN),
    ],
)
def test_illegal_moves_are_refused(status: Status | None, action: Action) -> None:
    with pytest.raises(IllegalTransition):
        next_status(status, action)


def test_a_closed_ticket_can_only_be_reopened_and_a_rejected_one_never_moves() -> None:
    for (source, action), _target in TRANSITIONS.items():
        if source in CLOSED_STATUSES:
            assert (source, action) == (Status.CLOSED, Action.REOPEN)
    assert not is_open(Status.CLOSED) and not is_open(Status.REJECTED) and is_open(Status.REOPENED)
