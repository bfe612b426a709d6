"""No secret in any log: `otklik -v run` serves each channel against the fake platforms,
a message goes through, and nothing it printed contains the bot token, the VK group token or the webhook
secret. Before the fix, python-telegram-bot's httpx logged `…/bot<token>/getUpdates` on every request."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bots import logging_setup
from bots.logging_setup import Redactor, install_redaction, redact_also
from bots.settings import Settings
from tests.fakes import wait_for
from tests.fakes.telegram_api import TOKEN, FakeTelegram, TelegramUser
from tests.fakes.vk_api import FakeVk, VkUser

OTKLIK = str(Path(sys.executable).with_name("otklik"))
WEBHOOK_SECRET = "webhook-secret-9f3c2a71"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "VK_", "DATABASE_", "WEBHOOK_", "HTTP_"))
    }
    # HTTP_PORT=0: a free port, so that nothing else listening on 8080 fails the run
    env.update(DATA_DIR=str(tmp_path / "data"), GEOCODER="off", PYTHONUNBUFFERED="1", HTTP_PORT="0")
    env.update(extra)
    return env


async def _serve_and_talk(
    env: dict[str, str], cwd: Path, ready: Callable[[], Awaitable[None]], talk: Callable[[], Awaitable[None]]
) -> str:
    """`otklik -v run`; once `ready` returns, `talk`, then SIGTERM; everything it wrote (stdout + stderr)."""
    process = await asyncio.create_subprocess_exec(
        OTKLIK,
        "-v",
        "run",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    chunks: list[bytes] = []

    async def collect() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(65536):
            chunks.append(chunk)

    reader = asyncio.create_task(collect())
    try:
        exited = asyncio.ensure_future(process.wait())
        starting = asyncio.ensure_future(ready())
        await asyncio.wait({exited, starting}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        starting.cancel()
        assert process.returncode is None and starting.done(), b"".join(chunks).decode()
        starting.result()
        await talk()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        await asyncio.wait_for(reader, 10)
    output = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, output
    return output


def assert_no_secret(output: str, *secrets: str) -> None:
    assert "INFO" in output  # -v really logged something
    for secret in secrets:
        assert secret not in output, f"{secret!r} appears in the log:\n{output}"


# --- Telegram ---------------------------------------------------------------------------------------------
@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = await FakeTelegram().start()
    yield fake
    await fake.stop()


TELEGRAM_SECRETS = (TOKEN, TOKEN.split(":", 1)[1])


@pytest.mark.parametrize("library", ["aiogram", "ptb"])
@pytest.mark.e2e
async def test_no_bot_token_in_the_log_of_telegram_polling(
    telegram: FakeTelegram, tmp_path: Path, library: str
) -> None:
    env = _environment(
        tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url, TELEGRAM_LIBRARY=library
    )

    async def deliver(updates: list[dict[str, Any]]) -> None:
        telegram.push(*updates)
        last = max(u["update_id"] for u in updates)
        await telegram.wait_for(lambda: telegram.confirmed > last, 20, f"update {last} handled")

    async def talk() -> None:
        user = TelegramUser(telegram, deliver, 9301)
        await user.command("start")
        await telegram.wait_for(lambda: telegram.to(9301), 20, "the answer to /start")

    async def ready() -> None:
        await wait_for(lambda: telegram.method_calls("getUpdates"), 60, "polling")

    output = await _serve_and_talk(env, tmp_path, ready, talk)
    assert_no_secret(output, *TELEGRAM_SECRETS)


@pytest.mark.e2e
async def test_no_bot_token_or_webhook_secret_in_the_log_of_the_telegram_webhook(
    telegram: FakeTelegram, tmp_path: Path
) -> None:
    port = _free_port()
    env = _environment(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.url,
        TELEGRAM_LIBRARY="ptb",
        WEBHOOK_BASE_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
    )

    async def deliver(updates: list[dict[str, Any]]) -> None:
        for update in updates:
            assert await telegram.post_webhook(update) == 200

    async def talk() -> None:
        user = TelegramUser(telegram, deliver, 9302)
        for _ in range(600):  # setWebhook comes before the server listens
            try:
                await user.command("start")
                break
            except OSError:
                await asyncio.sleep(0.05)
        await telegram.wait_for(lambda: telegram.to(9302), 20, "the answer to /start")

    async def ready() -> None:
        await wait_for(lambda: telegram.webhook.get("url"), 60, "setWebhook")

    output = await _serve_and_talk(env, tmp_path, ready, talk)
    assert_no_secret(output, *TELEGRAM_SECRETS, WEBHOOK_SECRET)


# --- VK ---------------------------------------------------------------------------------------------------
def _vk_environment(vk: FakeVk, tmp_path: Path, **extra: str) -> dict[str, str]:
    return _environment(
        tmp_path, VK_GROUP_TOKEN=vk.token, VK_GROUP_ID=str(vk.group_id), VK_API_URL=vk.api_url, **extra
    )


@pytest.mark.e2e
async def test_no_group_token_in_the_log_of_vk_long_poll(vk: FakeVk, tmp_path: Path) -> None:
    async def talk() -> None:
        user = VkUser(vk, 9303)
        await user.command("start")
        await wait_for(lambda: vk.sent_to(9303), 20, "the answer to /start")

    async def ready() -> None:
        await wait_for(lambda: vk.long_polls > 0, 60, "long poll")

    output = await _serve_and_talk(_vk_environment(vk, tmp_path), tmp_path, ready, talk)
    assert_no_secret(output, vk.token)


@pytest.mark.e2e
async def test_no_group_token_or_secret_in_the_log_of_the_vk_callback_api(vk: FakeVk, tmp_path: Path) -> None:
    port = _free_port()
    env = _vk_environment(
        vk,
        tmp_path,
        WEBHOOK_BASE_URL="https://otklik.example",
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        VK_CONFIRMATION_CODE="abc123",
    )
    url = f"http://127.0.0.1:{port}/vk/callback"

    async def ready() -> None:
        while True:
            try:
                if await vk.post_callback(url, vk.confirmation_request()) == (200, "abc123"):
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)

    async def talk() -> None:
        async def deliver(update: dict[str, Any]) -> None:
            assert await vk.post_callback(url, update, secret=WEBHOOK_SECRET) == (200, "ok")

        wrong = vk.message_new(9304, "/start")
        assert (await vk.post_callback(url, wrong, secret="not-the-secret"))[0] == 403
        user = VkUser(vk, 9304, deliver=deliver)
        await user.command("start")
        await wait_for(lambda: vk.sent_to(9304), 20, "the answer to /start")

    output = await _serve_and_talk(env, tmp_path, ready, talk)
    assert_no_secret(output, vk.token, WEBHOOK_SECRET)


# --- the redaction itself ---------------------------------------------------------------------------------
def test_redaction_covers_library_loggers_args_tracebacks_and_handlers_added_later() -> None:
    """geopy logs the Yandex URL with its key; vkbottle adds its own handler after start-up; an exception
    text may quote a Bot API URL."""
    settings = Settings(
        _env_file=None,
        telegram_bot_token=SecretStr("7012345678:FAKE-token-for-otklik-tests-only\n"),
        vk_group_token=SecretStr(" vk1.a.group-token "),
        yandex_geocoder_key=SecretStr("yandex-key-0b1e"),
        database_url="postgresql://otklik:pg-pass-77@db.example/otklik",
    )
    factory = logging.getLogRecordFactory()
    root = logging.getLogger()
    late = logging.StreamHandler(stream := io.StringIO())
    try:
        install_redaction(settings)
        redact_also("otklik-derived-webhook-secret")
        logger = logging.getLogger("late.library")
        logger.addHandler(late)  # added after start-up, as vkbottle does when it is imported
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.debug("GET https://geocode-maps.yandex.ru/1.x/?apikey=%s&geocode=x", "yandex-key-0b1e")
        logger.warning("connecting to %s", settings.database_url)
        try:
            raise RuntimeError("https://api.telegram.org/bot7099999999:FAKE-other-token-shaped-string/getMe")
        except RuntimeError:
            logger.exception("request to Telegram failed")
        logger.info("the token is %s", "7012345678:FAKE-token-for-otklik-tests-only")
        logger.info("vk %s, webhook %s", "vk1.a.group-token", "otklik-derived-webhook-secret")
        assert logging.getLogger("httpx").level == logging.WARNING
    finally:
        logging_setup._active = None
        logging.setLogRecordFactory(factory)
        for handler in root.handlers:
            for f in [f for f in handler.filters if isinstance(f, Redactor)]:
                handler.removeFilter(f)
        logging.getLogger("late.library").removeHandler(late)
    text = stream.getvalue()
    for secret in (
        "yandex-key-0b1e",
        "pg-pass-77",
        "FAKE-token-for-otklik-tests-only",
        "FAKE-other-token-shaped",
        "group-token",
        "derived-webhook",
    ):
        assert secret not in text, text
    assert "request to Telegram failed" in text and "RuntimeError" in text and "getMe" in text
