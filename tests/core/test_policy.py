"""Ticket policy in one place (waiting statuses, "overdue"), the notification table, and replies that carry
their language so a channel never guesses it from button labels."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from bots.telegram.sender import TelegramSender
from core.domain.policy import WAITING, is_overdue, overdue
from core.domain.tickets import Action, Status
from core.engine import Engine
from core.messages import ChatRef, Incoming, Reply
from core.notify import NOTICES
from tests.conftest import NOW


def test_overdue_means_waiting_and_past_the_deadline() -> None:
    past, future = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)
    for status in Status:
        ticket = SimpleNamespace(status=status, deadline=past)
        assert is_overdue(ticket, NOW) == (status in WAITING)  # type: ignore[arg-type]
        assert overdue(status.value, past, NOW) == (status in WAITING)  # stored text works the same
    assert not overdue(Status.NEW, NOW, NOW)  # at the deadline itself: not yet
    assert not overdue(Status.NEW, future, NOW) and not overdue(Status.NEW, None, NOW)


def test_every_action_that_tells_someone_is_in_the_table() -> None:
    silent = {Action.PLACE}
    assert set(NOTICES) == set(Action) - silent


async def test_dialog_replies_carry_the_chat_language(engine: Engine) -> None:
    chat = ChatRef("console", "lang-1")
    replies = await engine.handle(Incoming(chat, "e1", language="en", command="new"))
    assert replies and all(r.language == "en" for r in replies)


def test_the_telegram_sender_uses_the_reply_language() -> None:
    sender = SimpleNamespace(default_language="ru")
    english = Reply("Where?", ask_location=True, buttons=((("Отмена", "report:cancel"),),), language="en")
    assert TelegramSender.language_of(sender, english, "ru") == "en"  # type: ignore[arg-type]
    unsaid = Reply("Где?", ask_location=True)
    assert TelegramSender.language_of(sender, unsaid, "en-GB") == "en"  # type: ignore[arg-type]
