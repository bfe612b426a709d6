"""The Telegram channel: one bot, through aiogram or python-telegram-bot, polling or webhook."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field

from aiohttp import web

from bots.errors import SetupError
from bots.telegram.api import BotApi, Failure
from bots.telegram.pipeline import Pipeline
from bots.telegram.polling import Poller
from bots.telegram.sender import Limits, TelegramSender
from bots.telegram.translate import CHANNEL
from bots.telegram.webhook import PATH, WebhookRoute
from core.engine import Engine
from core.ports import Database, Pace, Photos
from core.texts import LANGUAGES, t

log = logging.getLogger(__name__)

COMMANDS = ("start", "new", "my", "help", "language", "cancel", "privacy", "mydata", "forget")
"""The commands menu (setMyCommands), described by `commands.<name>` in each language. The residents'
personal-data commands are listed too, so they find them without reading the notice (152-FZ)."""
_SECRET_ALPHABET = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True, slots=True)
class Options:
    poll_timeout: int = 25
    busy_interval: float = 0.1
    album_wait: float = 0.8
    album_limit: float = 3.0
    drain_timeout: float = 30.0
    limits: Limits = field(default_factory=Limits)


def webhook_secret(configured: str, token: str) -> str:
    """Telegram's secret token allows `A-Z a-z 0-9 _ -`. Unset, it is derived from the bot token, so every
    worker behind a load balancer agrees on it without configuration."""
    secret = configured or "otklik-" + hashlib.sha256(f"webhook:{token}".encode()).hexdigest()[:40]
    if not _SECRET_ALPHABET.fullmatch(secret):
        secret = hashlib.sha256(secret.encode()).hexdigest()
    return secret


class TelegramChannel:
    name = CHANNEL

    def __init__(
        self,
        api: BotApi,
        engine: Engine,
        db: Database,
        photos: Photos,
        *,
        webhook_url: str = "",
        webhook_secret: str = "",
        default_language: str = "ru",
        options: Options | None = None,
        map_url: str = "",
        bot_pace: Pace | None = None,
        bulk_pace: Pace | None = None,
    ) -> None:
        self.api = api
        self.options = options or Options()
        self.default_language = default_language
        self.sender = TelegramSender(
            api,
            db,
            photos,
            limits=self.options.limits,
            default_language=default_language,
            map_url=map_url,
            bot_pace=bot_pace,
            bulk_pace=bulk_pace,
        )
        self.pipeline = Pipeline(
            api,
            engine,
            db,
            photos,
            self.sender,
            album_wait=self.options.album_wait,
            album_limit=self.options.album_limit,
        )
        self.webhook_url = webhook_url.rstrip("/") + PATH if webhook_url else ""
        self.webhook: WebhookRoute | None = None
        self.poller: Poller | None = None
        if self.webhook_url:
            self.webhook = WebhookRoute(api, self.pipeline, webhook_secret)
        else:
            self.poller = Poller(
                api,
                self.pipeline,
                timeout=self.options.poll_timeout,
                busy_interval=self.options.busy_interval,
            )

    @property
    def polls(self) -> bool:
        """Long polling: only the elected leader runs it (bots/roles.py)."""
        return self.webhook is None

    @property
    def mode(self) -> str:
        return "webhook" if self.webhook is not None else "polling"

    async def start(self, http: web.Application | None) -> None:
        try:
            await self.api.start()
        except Exception as exc:
            failure = self.api.failure(exc)
            if failure is None:
                raise
            raise SetupError(_start_failure(failure)) from exc
        await self._set_commands()
        if self.webhook is not None:
            if http is None:
                raise RuntimeError("Telegram webhook mode needs the shared HTTP server")
            self.webhook.install(http)
            await self.api.set_webhook(self.webhook_url, self.webhook.secret.decode())
        else:
            assert self.poller is not None
            await self.api.delete_webhook()  # polling while a webhook is set fails with 409 forever
            self.poller.start()
        log.info("Telegram @%s via %s, %s", self.api.username, self.api.library, self.mode)

    async def stop(self) -> None:
        try:
            if self.poller is not None:
                await self.poller.stop(self.options.drain_timeout)
            else:
                assert self.webhook is not None
                self.webhook.closed = True
                await self.pipeline.close(self.options.drain_timeout)
        finally:
            await self.api.close()

    async def _set_commands(self) -> None:
        def menu(lang: str) -> list[tuple[str, str]]:
            return [(name, t(lang, f"commands.{name}")) for name in COMMANDS]

        try:
            await self.api.set_commands(menu(self.default_language), None)
            for lang in LANGUAGES:
                await self.api.set_commands(menu(lang), lang)
        except Exception as exc:
            if self.api.failure(exc) is None:
                raise
            log.warning("could not set the Telegram commands menu: %s", exc)


_TOKEN_LIKE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{6,}")


def _start_failure(failure: Failure) -> str:
    """What the operator reads when getMe fails at start: the setting to look at, not the library's trace.
    Library messages may quote the token (python-telegram-bot's does): it is cut out."""
    said = _TOKEN_LIKE.sub("<token>", failure.message)
    if failure.kind == "unauthorized":
        return (
            "Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized).\n"
            "Copy the token again from @BotFather, or leave TELEGRAM_BOT_TOKEN empty to run without Telegram."
        )
    if failure.kind == "network":
        return (
            f"cannot reach the Telegram Bot API ({said}).\n"
            "Check the network and TELEGRAM_API_URL, then start otklik again."
        )
    return f"Telegram refused the bot at start ({failure.kind}: {said}); check TELEGRAM_BOT_TOKEN."
