"""The Telegram channel (DESIGN.md §3, §9): aiogram (default) or python-telegram-bot, polling or webhook.

The libraries are imported only when a token is configured: aiogram alone takes seconds to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bots.app import App
    from bots.telegram.api import BotApi
    from bots.telegram.channel import Options, TelegramChannel


def make_api(library: str, token: str, api_url: str) -> BotApi:
    if library == "ptb":
        from bots.telegram.ptb_channel import PtbApi

        return PtbApi(token, api_url)
    if library == "aiogram":
        from bots.telegram.aiogram_channel import AiogramApi

        return AiogramApi(token, api_url)
    raise ValueError(f"unknown TELEGRAM_LIBRARY {library!r}: aiogram or ptb")


def create_channel(app: App, options: Options | None = None) -> TelegramChannel | None:
    """The `channel_factories()` entry: None unless TELEGRAM_BOT_TOKEN is set (the library is imported only
    then)."""
    settings = app.settings
    token = settings.telegram_bot_token.get_secret_value().strip() if settings.telegram_bot_token else ""
    if not token:
        return None
    from bots.logging_setup import redact_also
    from bots.telegram.channel import Options, TelegramChannel, webhook_secret
    from bots.telegram.sender import Limits

    if options is None:  # the bot's own rate (TELEGRAM_RATE); the outbox keeps to Telegram's 30 (Limits)
        options = Options(limits=Limits(bot_rate=settings.telegram_rate))
    limits = options.limits
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if settings.webhook_base_url:
        secret = webhook_secret(secret, token)
        redact_also(secret)  # derived from the token when WEBHOOK_SECRET is unset: keep it out of logs too
    # the bot's rate shared by every worker (one row on PostgreSQL): direct answers and outbox; on SQLite
    # (one process) the sender's own pace, which allows Telegram's bursts
    bot_pace = app.shared_pace(f"telegram:{token.split(':')[0]}", limits.bot_rate)
    return TelegramChannel(
        make_api(settings.telegram_library, token, settings.telegram_api_url),
        app.engine,
        app.db,
        app.photos,
        webhook_url=settings.webhook_base_url,
        webhook_secret=secret if settings.webhook_base_url else "",
        default_language=settings.default_language,
        options=options,
        map_url=settings.map_page_url,  # offered only when that is https (sender.py)
        bot_pace=bot_pace,
        # notifications keep to Telegram's bulk limit per message when the bot may answer faster, each slot
        # booked in the bot's pace too
        bulk_pace=app.pace("telegram", limits.bulk_rate, bot_pace)
        if limits.bot_rate > limits.bulk_rate
        else None,
    )
