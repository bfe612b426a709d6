"""The VKontakte channel: Bots Long Poll by default, the Callback API when `otklik run` serves webhooks.

The parts mirror the Telegram channel's: api.py (the rate-limited client), translate.py (events →
`Incoming`), render.py (`Reply` → messages), sender.py (everything sent), pipeline.py (one event through the
engine), polling.py (Bots Long Poll), callback.py (the Callback API route, Telegram's webhook). This module
puts them together and checks the token at start.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from vkbottle import VKAPIError

from bots.errors import SetupError
from bots.vk.api import (
    API_ERRORS,
    AUTHORIZATION_FAILED,
    DEFAULT_API_URL,
    NETWORK_ERRORS,
    BadResponse,
    RequestWindow,
    VkApi,
    http_client,
)
from bots.vk.callback import PATH, CallbackRoute
from bots.vk.pipeline import Pipeline
from bots.vk.polling import Poller
from bots.vk.render import MiniApp
from bots.vk.sender import VkSender
from bots.vk.translate import CHANNEL
from core.engine import Engine
from core.ports import Database, Photos, PollPositions

log = logging.getLogger(__name__)


class VkChannel:
    name = CHANNEL

    def __init__(
        self,
        engine: Engine,
        db: Database,
        photos: Photos,
        *,
        token: str,
        positions: PollPositions,
        data_dir: Path,
        group_id: int | None = None,
        api_url: str = DEFAULT_API_URL,
        confirmation_code: str = "",
        secret: str = "",
        wait: int = 25,
        limiter: RequestWindow | None = None,
        backoff: float = 0.5,
        callback_api: bool = False,
        map_app_id: int | None = None,
    ) -> None:
        self.callback_api = callback_api
        """Serve the Callback API on the shared HTTP server instead of polling (WEBHOOK_BASE_URL is set)."""
        self.positions = positions
        """Where Bots Long Poll stopped, in the database: the next leader, on any host, resumes there."""
        self.state_dir = Path(data_dir) / "vkbottle"
        """vkbottle's `ts` file of a single-host install before the database kept it: read once to upgrade."""
        self.wait = wait
        self.http_client = http_client()
        self.api = VkApi(
            token, api_url=api_url, http_client=self.http_client, limiter=limiter, backoff=backoff
        )
        map_app = MiniApp(map_app_id, -group_id if group_id else None) if map_app_id else None
        self.sender = VkSender(self.api, db, photos, map_app=map_app)
        self.pipeline = Pipeline(
            self.api, engine, db, photos, self.sender, self.http_client, group_id=group_id
        )
        self.callback = CallbackRoute(self.api, self.pipeline, secret, confirmation_code)
        self.poller: Poller | None = None

    @property
    def polls(self) -> bool:
        """Bots Long Poll: only the elected leader runs it (bots/roles.py)."""
        return not self.callback_api

    @property
    def confirmation_code(self) -> str:
        return self.callback.confirmation_code

    async def start(self, http: web.Application | None) -> None:
        self.callback.closed = False
        await self._check_token()
        if not self.callback_api or http is None:
            self.poller = Poller(self.api, self.pipeline, self.positions, self.state_dir, wait=self.wait)
            self.poller.start()
            log.info("VK: Bots Long Poll")
            return
        self.callback.install(http)
        try:
            await self.callback.confirmation()
        except API_ERRORS as exc:
            log.warning("VK: no confirmation code yet (%s); asking again on VK's confirmation request", exc)
        log.info("VK: Callback API at %s", PATH)

    async def _check_token(self) -> None:
        """Ask VK who we are before serving: a wrong token or an unreachable API is the operator's to fix,
        and is said in one line at start instead of a long-poll loop failing forever."""
        try:
            await self.api.request("groups.getById", {})
        except VKAPIError as exc:
            if exc.code == AUTHORIZATION_FAILED:
                raise SetupError(
                    f"VK rejected VK_GROUP_TOKEN (error 5: {exc.error_msg}).\n"
                    "Create a community token with the messages and photos rights, or leave VK_GROUP_TOKEN "
                    "empty to run without VK."
                ) from exc
            raise SetupError(
                f"VK refused VK_GROUP_TOKEN (error {exc.code}: {exc.error_msg}); check VK_GROUP_TOKEN."
            ) from exc
        except (*NETWORK_ERRORS, BadResponse) as exc:
            raise SetupError(
                f"cannot reach the VK API ({exc or type(exc).__name__}).\n"
                "Check the network and VK_API_URL, then start otklik again."
            ) from exc

    async def stop(self) -> None:
        self.callback.closed = True
        if self.poller is not None:
            await self.poller.stop()
            self.poller = None
            log.info("VK: Bots Long Poll stopped")
        await self.callback.drain()
        await self.http_client.close()
