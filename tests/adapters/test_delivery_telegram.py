"""Failures, repeats, redeliveries and photo downloads through the real aiogram and python-telegram-bot code
against the fake Bot API:
failures that would repeat are confirmed and apologised for once, transient ones are redelivered; a reply
lost with a killed process is given after the restart; two bots' update ids do not collide; photos sent where
no step takes them are not downloaded; an unparsable webhook body is a 400."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.exc import OperationalError

from bots.telegram import make_api
from bots.telegram.channel import TelegramChannel
from bots.telegram.webhook import SECRET_HEADER
from core.engine import Engine
from storage.photos import PhotoStore
from tests.fakes.telegram_api import TOKEN, FakeTelegram, TelegramUser, text_is_any
from tests.support import jpeg_bytes
from tests.telegram_support import FAST, SECRET, Harness


def a_bug(monkeypatch: pytest.MonkeyPatch, engine: Engine, *, times: int | None = None) -> list[int]:
    """Fault injection: a dialog step that raises ValueError (a bug that repeats on every redelivery);
    `times` failures only, then the real step. Returns a list counting the calls."""
    real = engine._dispatch
    calls: list[int] = []

    def broken(ctx: Any, incoming: Any) -> Any:
        calls.append(1)
        if times is None or len(calls) <= times:
            raise ValueError("invalid literal for int() with base 10: '²'")
        return real(ctx, incoming)

    monkeypatch.setattr(engine, "_dispatch", broken)
    return calls


def an_outage(monkeypatch: pytest.MonkeyPatch, engine: Engine, times: int = 1) -> list[int]:
    """Fault injection: the database connection drops during the first `times` steps."""
    real = engine._dispatch
    calls: list[int] = []

    def flaky(ctx: Any, incoming: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return real(ctx, incoming)

    monkeypatch.setattr(engine, "_dispatch", flaky)
    return calls


def apologies(fake: FakeTelegram, user: TelegramUser) -> int:
    return sum(text_is_any(m.text, "channel.error") for m in fake.to(user.user_id))


def tracebacks(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.exc_info and r.name.startswith("bots."))


# --- #3: a failure that will repeat is confirmed; a transient one is redelivered ----------------------------
async def test_a_deterministic_failure_is_answered_200_and_apologised_for_once(
    bot: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.start("webhook")
    user = bot.user()
    update = user.message(text="/start")
    calls = a_bug(monkeypatch, bot.engine)
    assert await bot.fake.post_webhook(update) == 200
    assert await bot.fake.post_webhook(update) == 200  # the fake sends it again anyway
    await bot.stop()  # and again after a restart: recorded as handled, not tried a third time
    await bot.start("webhook")
    assert await bot.fake.post_webhook(update) == 200
    assert apologies(bot.fake, user) == 1
    assert len(calls) == 1
    assert tracebacks(caplog) == 1


async def test_a_deterministic_failure_in_polling_is_confirmed_and_apologised_for_once(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.start("polling")
    user = bot.user()
    calls = a_bug(monkeypatch, bot.engine, times=1)
    await user.command("start")  # returns once the offset moved past it
    assert apologies(bot.fake, user) == 1 and len(calls) == 1
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")


async def test_a_transient_failure_in_polling_holds_the_offset_and_is_handled_again(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.start("polling")
    user = bot.user()
    calls = an_outage(monkeypatch, bot.engine, times=2)
    await user.command("start")  # confirmed only once handled
    await user.expect("menu.welcome", "menu.prompt")
    assert apologies(bot.fake, user) == 0
    assert len(calls) == 3


async def test_a_transient_failure_in_the_webhook_is_500_and_redelivered(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.start("webhook")
    user = bot.user()
    update = user.message(text="/start")
    an_outage(monkeypatch, bot.engine, times=1)
    assert await bot.fake.post_webhook(update) == 500
    assert await bot.fake.post_webhook(update) == 200
    assert [text_is_any(m.text, "menu.welcome") for m in bot.fake.to(user.user_id)] == [True, False]
    assert apologies(bot.fake, user) == 0


# --- #8: an unparsable body is a 400, secret first ----------------------------------------------------------
async def test_deeply_nested_json_on_the_telegram_webhook_is_400_without_a_traceback(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.start("webhook")
    deep = "[" * 100_000 + "]" * 100_000
    target = bot.fake.webhook_target
    async with aiohttp.ClientSession() as session:
        async with session.post(target, data=deep, headers={SECRET_HEADER: "wrong"}) as response:
            assert response.status == 403  # the secret is checked before the body is read
        for body in (deep, '{"update_id": 1, "message": ' + deep + "}", b"\xff\xfe{", "[]"):
            async with session.post(target, data=body, headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 400
    assert tracebacks(caplog) == 0
    assert sum("refused" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == 4


# --- #7: two bots on one database ---------------------------------------------------------------------------
async def test_two_bots_update_1_are_both_handled_on_one_database(
    engine: Engine, photos: PhotoStore, library: str
) -> None:
    """The operator switches bots: the new bot's update ids start where the old one's did."""
    fakes = [await FakeTelegram(token=f"{n}:AAEfakeTokenForTests-{n}").start() for n in (111111, 222222)]
    channels = []
    try:
        for fake in fakes:
            channel = TelegramChannel(
                make_api(library, fake.token, fake.url), engine, engine.db, photos, options=FAST
            )
            await channel.start(None)
            channels.append(channel)

            async def deliver(updates: list[dict[str, Any]], fake: FakeTelegram = fake) -> None:
                fake.push(*updates)
                last = max(u["update_id"] for u in updates)
                await fake.wait_for(lambda: fake.confirmed > last, what=f"update {last}")

            user = TelegramUser(fake, deliver, 7007)
            await user.command("start")
            assert user.replies[0].chat_id == 7007 and text_is_any(user.replies[0].text, "menu.welcome")
        assert fakes[0].method_calls("getUpdates") and fakes[0].to(7007)[0].text == fakes[1].to(7007)[0].text
    finally:
        for channel in channels:
            await channel.stop()
        for fake in fakes:
            await fake.stop()


# --- #7: photos only when a step takes them -----------------------------------------------------------------
def stored_files(photos: PhotoStore) -> list[Path]:
    return [p for p in Path(photos.root).rglob("*") if p.is_file()] if Path(photos.root).exists() else []


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_photos_sent_at_the_main_menu_are_not_downloaded(
    bot: Harness, photos: PhotoStore, mode: str
) -> None:
    await bot.start(mode)
    user = bot.user()
    await user.command("start")
    await user.photos(*(jpeg_bytes((i * 40, 0, 0)) for i in range(3)))  # an album
    await user.expect("menu.welcome", "menu.prompt")  # as before: photos are no answer to the menu
    await user.photos(jpeg_bytes((0, 90, 0)))
    await user.expect("menu.welcome", "menu.prompt")
    assert bot.fake.method_calls("getFile") == []
    assert stored_files(photos) == []


# --- #5: no lost reply after a crash ------------------------------------------------------------------------
@pytest.mark.e2e
async def test_a_reply_lost_in_a_kill_after_the_commit_is_given_after_the_restart(
    tmp_path: Path, library: str, env: dict[str, str], otklik: Any
) -> None:
    """`otklik run` killed with SIGKILL while it sends the answer to an update it has committed (the fake
    never answers that sendMessage): the restarted process gets the update again and asks the question."""
    fake = await FakeTelegram().start()
    run_env = {k: v for k, v in env.items() if not k.startswith("WEBHOOK_")}
    run_env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.url, TELEGRAM_LIBRARY=library)
    program = str(Path(sys.executable).with_name("otklik"))  # `otklik` prepared a PostgreSQL database

    async def start() -> asyncio.subprocess.Process:
        polls = len(fake.method_calls("getUpdates"))
        process = await asyncio.create_subprocess_exec(
            program, "run", env=run_env, cwd=tmp_path, stderr=asyncio.subprocess.DEVNULL
        )
        await fake.wait_for(lambda: len(fake.method_calls("getUpdates")) > polls, 90, "polling to start")
        return process

    async def deliver(updates: list[dict[str, Any]]) -> None:
        fake.push(*updates)
        last = max(u["update_id"] for u in updates)
        await fake.wait_for(lambda: fake.confirmed > last, 20, f"update {last} handled")

    process = await start()
    try:
        user = TelegramUser(fake, deliver, 9119)
        await user.command("start")
        await user.expect("menu.welcome", "menu.prompt")

        fake.hang.add("sendMessage")
        sent = len(fake.method_calls("sendMessage"))
        fake.push(user.message(text="/new", entities=[{"type": "bot_command", "offset": 0, "length": 4}]))
        await fake.wait_for(lambda: len(fake.method_calls("sendMessage")) > sent, 20, "the answer being sent")
        process.send_signal(signal.SIGKILL)  # committed, the answer in flight: the process dies
        await process.wait()
        fake.hang.clear()
        before = len(fake.to(user.user_id))

        process = await start()
        await fake.wait_for(lambda: len(fake.to(user.user_id)) > before, 20, "the question after the restart")
        await fake.wait_for(lambda: not fake.updates or fake.confirmed > fake.updates[-1]["update_id"], 20)
        after = fake.to(user.user_id)[before:]
        assert [text_is_any(m.text, "report.category.ask") for m in after] == [True]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
        await fake.stop()
