"""The consent notice and the `/mydata` export through the real aiogram and python-telegram-bot code, on the
fake Bot API: the notice's buttons arrive as an inline keyboard, the export as a sendDocument file."""

from __future__ import annotations

import json

from core.personal_data import PrivacyPolicy
from tests.telegram_support import Harness


async def test_consent_then_mydata_sends_the_export_as_a_document(bot: Harness) -> None:
    bot.engine.privacy = PrivacyPolicy(consent_required=True, retention_days=3 * 365)
    await bot.start()
    user = bot.user(user_id=6001)
    await user.command("new")
    await user.expect("privacy.notice")
    assert [data for _label, data in user.replies[-1].buttons()] == ["pd:consent:yes", "pd:consent:no"]
    await user.press("pd:consent:yes")
    await user.expect("privacy.agreed", "report.category.ask")
    await user.command("mydata")
    await user.expect("privacy.mydata")
    [document] = [m for m in user.replies if m.kind == "document"]
    assert document.photo is not None
    kept = json.loads(document.photo)
    assert kept["chats"][0]["chat_id"] == "6001" and kept["consent"]["agreed"] is True
