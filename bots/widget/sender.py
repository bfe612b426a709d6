"""Outbox delivery to widget residents: the `ChannelSender` of the widget channel.

Delivering is writing the message (the `Reply` payload, photos by sha256) into the resident's inbox and
waking their open panels; a closed panel finds it, counted as unread, on the next visit.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bots.widget import CHANNEL
from bots.widget.live import LIVE, Live
from core.payload import encode_reply
from core.ports import Database, OutgoingMessage


class WidgetSender:
    channel = CHANNEL
    max_per_second = 0.0  # our own table: no platform to protect
    chat_interval = 0.0

    def __init__(self, db: Database, live: Live = LIVE) -> None:
        self.db = db
        self.live = live

    async def deliver(self, message: OutgoingMessage) -> None:
        reply = message.reply
        recipient = message.recipient
        chat_id, payload, at = recipient.chat_id, encode_reply(reply), datetime.now(UTC)
        await self.db.run(lambda uow: uow.widget_inbox.append(chat_id, payload, at))
        self.live.wake(chat_id)
