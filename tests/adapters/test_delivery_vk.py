"""Delivery guarantees through the real vkbottle code against the fake VK API: failures that would
repeat are confirmed and apologised for once, transient ones are redelivered; a redelivered event has no
second side effect; photos are downloaded only where a step takes them; the Callback API checks its secret
before using the body and refuses what it cannot parse; a reply lost in a kill is given after the restart."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.exc import OperationalError

from bots.vk.callback import MAX_BODY
from bots.vk.callback import PATH as CALLBACK_PATH
from bots.vk.channel import VkChannel
from core.engine import Engine
from core.messages import ChatRef, Reply
from storage.photos import PhotoStore
from storage.poll_positions import DbPollPositions
from tests.e2e.test_vk_process import _environment, _run, _stop
from tests.fakes import serve, wait_for
from tests.fakes.vk_api import FakeVk, VkUser
from tests.support import jpeg_bytes, text_is
from tests.vk_support import make_channel, start_polling, to_photo_step

SECRET = "s3cret"


@pytest.fixture
async def polling(engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path) -> AsyncIterator[VkChannel]:
    channel = await start_polling(make_channel(engine, photos, vk, tmp_path / "data"), vk)
    yield channel
    await channel.stop()


@pytest.fixture
async def callback(engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path) -> AsyncIterator[str]:
    http = web.Application()
    channel = make_channel(engine, photos, vk, tmp_path / "data", secret=SECRET, callback_api=True)
    await channel.start(http)
    runner, url = await serve(http)
    yield url + CALLBACK_PATH
    await channel.stop()
    await runner.cleanup()


def fault(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, exc: Exception, times: int | None = None
) -> list[int]:
    """Fault injection in a dialog step: `exc` on the first `times` calls (every call when None)."""
    real = engine._dispatch
    calls: list[int] = []

    def broken(ctx: Any, incoming: Any) -> Any:
        calls.append(1)
        if times is None or len(calls) <= times:
            raise exc
        return real(ctx, incoming)

    monkeypatch.setattr(engine, "_dispatch", broken)
    return calls


def outage() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def apologies(vk: FakeVk, user: VkUser) -> int:
    return sum(text_is(Reply(m.text), "channel.error") for m in vk.sent_to(user.peer_id))


def tracebacks(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.exc_info and r.name.startswith("bots."))


# --- #3 -----------------------------------------------------------------------------------------------------
async def test_vk_callback_deterministic_failure_is_ok_and_apologised_for_once(
    callback: str,
    vk: FakeVk,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = VkUser(vk, 7001)
    start = vk.message_new(user.peer_id, "/start")
    calls = fault(monkeypatch, engine, KeyError("slots"))
    assert await vk.post_callback(callback, start, secret=SECRET) == (200, "ok")
    assert await vk.post_callback(callback, start, secret=SECRET) == (200, "ok")  # sent again anyway
    await vk.settled()
    assert apologies(vk, user) == 1 and len(calls) == 1
    assert tracebacks(caplog) == 1


async def test_vk_callback_transient_failure_is_500_and_redelivered(
    callback: str, vk: FakeVk, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = VkUser(vk, 7002)
    start = vk.message_new(user.peer_id, "/start")
    fault(monkeypatch, engine, outage(), times=1)
    assert (await vk.post_callback(callback, start, secret=SECRET))[0] == 500
    assert await vk.post_callback(callback, start, secret=SECRET) == (200, "ok")
    await user.expect("menu.welcome", "menu.prompt")
    assert apologies(vk, user) == 0


async def test_vk_long_poll_deterministic_failure_is_apologised_for_once_and_the_next_event_handled(
    polling: VkChannel, vk: FakeVk, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = VkUser(vk, 7003)
    calls = fault(monkeypatch, engine, ValueError("a bug"), times=1)
    await user.command("start")
    await user.expect("channel.error")
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    assert len(calls) == 2


async def test_vk_long_poll_transient_failure_is_handled_again(
    polling: VkChannel, vk: FakeVk, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = VkUser(vk, 7004)
    calls = fault(monkeypatch, engine, outage(), times=4)  # more than the three tries VK once had
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt", timeout=10)
    assert apologies(vk, user) == 0 and len(calls) == 5


async def test_vk_long_poll_batch_stopped_mid_way_is_fetched_again_by_the_next_leader(
    polling: VkChannel,
    vk: FakeVk,
    engine: Engine,
    photos: PhotoStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The batch's `ts` is saved only after the batch was handled: a leader stopped while an event of it keeps
    failing leaves the saved position before the batch, and the next leader (another host: its own DATA_DIR,
    the same database) fetches the batch again and answers it."""
    positions = DbPollPositions(engine.db)
    name = f"vk:{vk.group_id}"
    user = VkUser(vk, 7010)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    await vk.settled()
    before = await positions.load(name)
    assert before == str(len(vk.events))

    calls = fault(monkeypatch, engine, outage())  # the database is down for this worker
    await user.command("help")
    await wait_for(lambda: len(calls) >= 2, 10, "the event to be tried again")
    await polling.stop()  # mid-batch
    assert await positions.load(name) == before
    monkeypatch.undo()

    successor = await start_polling(make_channel(engine, photos, vk, tmp_path / "another-host"), vk)
    try:
        await user.expect("help.text", "menu.prompt")
        await vk.settled()
        assert await positions.load(name) == str(len(vk.events))
    finally:
        await successor.stop()
    assert apologies(vk, user) == 0


# --- #8 -----------------------------------------------------------------------------------------------------
async def test_deeply_nested_json_on_the_vk_callback_is_400_without_a_traceback(
    callback: str, vk: FakeVk, caplog: pytest.LogCaptureFixture
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    bodies = [deep, '{"secret": "s3cret", "type": "message_new", "object": ' + deep + "}", b"\xff{", "[1]"]
    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(callback, data=body) as response:
                assert response.status == 400
        async with session.post(callback, data=b" " * (MAX_BODY + 1)) as response:
            assert response.status == 413
        wrong = {"type": "message_new", "secret": "wrong", "group_id": "not even an int", "object": {}}
        async with session.post(callback, data=json.dumps(wrong)) as response:
            assert response.status == 403
    assert tracebacks(caplog) == 0
    assert (
        len([r for r in caplog.records if r.levelno == logging.WARNING and "VK callback" in r.getMessage()])
        == 6
    )
    assert vk.calls_of("messages.send") == []


# --- #11 ----------------------------------------------------------------------------------------------------
async def test_a_redelivered_button_press_is_not_answered_or_edited_again(
    polling: VkChannel, vk: FakeVk
) -> None:
    user = VkUser(vk, 7005)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    press = await user.press("menu:new")
    await user.expect("report.category.ask")
    assert len(vk.calls_of("messages.sendMessageEventAnswer")) == 1
    edits = len(vk.calls_of("messages.edit"))
    lookups = len(vk.calls_of("messages.getByConversationMessageId"))

    await vk.push(press)  # VK sends the event again
    await user.expect("report.category.ask")  # the question asked again, nothing done twice
    assert len(vk.calls_of("messages.sendMessageEventAnswer")) == 1
    assert len(vk.calls_of("messages.edit")) == edits
    assert len(vk.calls_of("messages.getByConversationMessageId")) == lookups


async def test_a_redelivered_photo_message_downloads_nothing_again(
    polling: VkChannel, vk: FakeVk, engine: Engine
) -> None:
    user = VkUser(vk, 7006)
    await to_photo_step(user)
    message = await user.photos(jpeg_bytes((200, 30, 30), (640, 480)))
    await user.expect("report.photos.ask_more")
    downloads = list(vk.downloads)
    assert len(downloads) == 1

    await vk.push(message)  # VK sends it again
    await user.expect("report.photos.ask_more")
    assert vk.downloads == downloads
    state = await engine.db.run(lambda store: store.dialogs.load(user_chat(user)))
    assert state is not None and len(state["slots"]["photos"]) == 1


# --- #7 -----------------------------------------------------------------------------------------------------
async def test_vk_photos_sent_at_the_main_menu_are_not_downloaded(
    polling: VkChannel, vk: FakeVk, photos: PhotoStore
) -> None:
    user = VkUser(vk, 7007)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    for _ in range(3):
        await user.photos(jpeg_bytes((10, 200, 10)), jpeg_bytes((10, 10, 200)))
        await user.expect("menu.welcome", "menu.prompt")  # the answer photos always had at the menu
    assert vk.downloads == []
    assert not photos.root.exists() or not any(p.is_file() for p in photos.root.rglob("*"))


# --- #5 -----------------------------------------------------------------------------------------------------
@pytest.mark.e2e
async def test_vk_reply_lost_in_a_kill_after_the_commit_is_given_after_the_restart(
    vk: FakeVk, tmp_path: Path
) -> None:
    """`otklik run` (long poll) killed with SIGKILL while it sends the answer to a committed button press."""
    database = f"sqlite:///{tmp_path / 'otklik.sqlite3'}"  # one database; each host its own DATA_DIR
    env = _environment(
        vk, tmp_path / "data", CONSENT_REQUIRED="false", DATABASE_URL=database
    )  # consent: tests/e2e/test_vk_process.py

    async def start(data_dir: Path) -> asyncio.subprocess.Process:
        polls = vk.long_polls
        process = await _run({**env, "DATA_DIR": str(data_dir)}, tmp_path)
        await wait_for(lambda: vk.long_polls > polls or process.returncode is not None, 60, "long poll")
        assert process.returncode is None
        return process

    process = await start(tmp_path / "data")
    try:
        user = VkUser(vk, 7008)
        await user.command("start")
        await user.expect("menu.welcome", "menu.prompt")
        vk.hang.add("messages.send")
        sends = len(vk.calls_of("messages.send"))
        await user.press("menu:new")
        await wait_for(lambda: len(vk.calls_of("messages.send")) > sends, 20, "the answer being sent")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        vk.hang.clear()

        process = await start(tmp_path / "another-host")  # the batch's ts was not saved: fetched again
        await user.expect("report.category.ask", timeout=20)
        assert len(vk.calls_of("messages.sendMessageEventAnswer")) == 1  # answered once, before the kill
    finally:
        if process.returncode is None:
            await _stop(process)


def user_chat(user: VkUser) -> ChatRef:
    return ChatRef("vk", str(user.peer_id))


async def test_two_communities_same_event_id_are_both_handled(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> None:
    """The operator moves the bot to another community on the same database: delivery ids are unique per
    community only, so the event's group_id is part of the dedupe key."""
    start = vk.message_new(7009, "/start")
    for group_id in (vk.group_id, vk.group_id + 1):
        channel = make_channel(engine, photos, vk, tmp_path / "data", group_id=group_id)
        sends = len(vk.calls_of("messages.send"))
        try:
            assert await channel.pipeline.handle_event({**start, "group_id": group_id})  # the same event_id
        finally:
            await channel.stop()
        # Answered each time: welcome and menu. (The fake keeps random_ids across communities, as VK does
        # not, so it counts the calls rather than the messages delivered.)
        assert len(vk.calls_of("messages.send")) == sends + 2
