"""The VK channel end to end: the real vkbottle code against our fake VK API, over Bots Long Poll and the
Callback API, with the real engine and storage."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web

from bots import runner
from bots import vk as vk_package
from bots.settings import Settings
from bots.vk.api import RequestWindow
from bots.vk.callback import PATH as CALLBACK_PATH
from bots.vk.channel import VkChannel
from bots.vk.render import MiniApp
from core.engine import Engine
from core.messages import ChatRef, Location, Photo, Reply
from core.ports import DeliveryError, OutgoingMessage
from core.texts import t
from storage.photos import PhotoStore
from storage.poll_positions import DbPollPositions
from tests.fakes import serve, wait_for
from tests.fakes.vk_api import FakeVk, VkUser
from tests.support import jpeg_bytes, stored_photo
from tests.vk_support import CENTRE, make_channel, start_polling, to_photo_step, to_place_step


@pytest.fixture
async def polling(engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path) -> AsyncIterator[VkChannel]:
    channel = await start_polling(make_channel(engine, photos, vk, tmp_path / "data"), vk)
    yield channel
    await channel.stop()


async def test_full_report_with_two_photos_in_one_message_and_a_geo_attachment(
    polling: VkChannel, vk: FakeVk, engine: Engine, photos: PhotoStore
) -> None:
    user = VkUser(vk)
    await user.command("start")
    [_welcome, menu] = await user.expect("menu.welcome", "menu.prompt")
    menu_text = menu.text
    await user.press("menu:new")
    await user.expect("report.category.ask")
    # the pressed message keeps its text and loses its keyboard: it cannot be pressed twice
    assert menu.keyboard is None and menu.edits == 1 and menu.text == menu_text
    keyboard = user.replies[0].keyboard
    assert keyboard is not None and keyboard["inline"] and len(keyboard["buttons"]) <= 6
    await user.press("cat:roads")
    await user.expect("report.subcategory.ask")
    await user.press(user.button_data()[0])
    await user.expect("report.location.ask")
    assert {"type": "location"} in user.keyboard()
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")
    await user.say("Глубокая яма на проезжей части, машины объезжают по встречной.")
    await user.expect("report.photos.ask")
    images = [jpeg_bytes((200, 30, 30), (640, 480)), jpeg_bytes((30, 30, 200), (800, 600))]
    await user.photos(*images)
    await user.expect("report.photos.ask_more")
    assert "2 из 5" in user.replies[0].text
    await user.press("photos:done")
    await user.expect("report.review.ask")
    await user.press("review:submit")
    await user.expect("report.submitted", "menu.prompt")

    ticket = await engine.db.run(lambda store: store.tickets.get(1))
    assert ticket is not None
    assert (ticket.lat, ticket.lon) == CENTRE and ticket.location_source == "pin"
    assert ticket.author_channel == "vk" and ticket.author_chat_id == str(user.peer_id)
    # the largest size of each photo was downloaded, not the thumbnails
    assert ticket.photos == tuple(photos.store(data).sha256 for data in images)
    presses = 5  # menu, category, subcategory, photos done, submit
    answers = vk.calls_of("messages.sendMessageEventAnswer")
    assert len(answers) == presses and all(a["peer_id"] == str(user.peer_id) for a in answers)
    assert vk.duplicates == []


async def test_typed_address_in_english_from_a_client_without_callback_buttons(
    polling: VkChannel, vk: FakeVk, engine: Engine
) -> None:
    old_client = {"button_actions": ["text"], "keyboard": True, "inline_keyboard": True, "lang_id": 3}
    user = VkUser(vk, 2002, language="en", client_info=old_client)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    assert {b["type"] for b in user.keyboard()} == {"text"}
    await user.press("menu:new")  # a text button: a message with the label and our payload
    await user.expect("report.category.ask")
    await user.press("cat:lighting")
    [ask] = await user.receive(1)
    if ask.text.startswith("Category"):
        await user.press(user.button_data()[0])
        await user.expect("report.location.ask")
    assert {b["type"] for b in user.keyboard()} == {"text"}  # no location button for this client
    await user.say("ул. Карла Маркса, 14")
    await user.expect("report.description.ask")
    await user.say("The street light has not worked for a week.")
    await user.expect("report.photos.ask")
    await user.press("photos:done")
    await user.expect("report.review.ask")
    await user.press("review:submit")
    await user.expect("report.submitted", "menu.prompt")
    ticket = await engine.db.run(lambda store: store.tickets.get(1))
    assert (
        ticket is not None and ticket.address == "ул. Карла Маркса, 14" and ticket.location_source == "typed"
    )
    assert vk.calls_of("messages.sendMessageEventAnswer") == []


async def test_bad_inputs_get_a_reask(polling: VkChannel, vk: FakeVk) -> None:
    user = VkUser(vk, 3003)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    await user.press("menu:new")
    await user.expect("report.category.ask")
    stale_menu = user.keyboard()
    for kind, word in (("sticker", "Стикер"), ("audio", "Аудиозапись"), ("wall", "Запись со стены")):
        await user.send(attachments=[{"type": kind, kind: {"id": 1, "owner_id": 1}}])
        await user.expect("input.unsupported", "report.category.ask")
        assert user.replies[0].text.startswith(word)
    await user.send(attachments=[{"type": "audio_message", "audio_message": {"duration": 3}}])
    await user.expect("input.unsupported", "report.category.ask")
    assert user.replies[0].text.startswith("Голосовое")
    await user.press("cat:roads")
    await user.expect("report.subcategory.ask")
    await user.press(user.button_data()[0])
    await user.expect("report.location.ask")
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")
    await user.send("я" * 10_000)
    await user.expect("report.description.too_long", "report.description.ask")
    assert "10000" in user.replies[0].text
    await user.send("")
    await user.expect("input.empty", "report.description.ask")
    # a callback button from an old message: answered (no spinner left) and called stale
    answered = len(vk.calls_of("messages.sendMessageEventAnswer"))
    old = next(b for b in stale_menu if json.loads(b["payload"])["b"] == "cat:roads")
    await vk.push(vk.message_event(user.peer_id, json.loads(old["payload"])))
    await user.expect("button.stale", "report.description.ask")
    assert len(vk.calls_of("messages.sendMessageEventAnswer")) == answered + 1
    await vk.push(vk.message_event(user.peer_id, {"something": "else"}))
    await user.expect("button.stale", "report.description.ask")


async def test_a_reply_longer_than_vk_allows_is_split(polling: VkChannel, vk: FakeVk) -> None:
    user = VkUser(vk, 3004)
    await polling.sender.reply(user.peer_id, [Reply("Строка.\n" * 1200, buttons=((("ok", "ok"),),))], "evt-1")
    parts = await user.receive(3)
    assert all(len(p.text) <= 4096 for p in parts)
    assert [p.keyboard is not None for p in parts] == [False, False, True]


async def position(engine: Engine, vk: FakeVk) -> str | None:
    """The Bots Long Poll `ts` saved in the database."""
    return await DbPollPositions(engine.db).load(f"vk:{vk.group_id}")


async def test_events_sent_while_the_bot_was_down_are_handled_after_a_restart(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    cwd_state = Path.cwd() / ".vkbottle"
    had_cwd_state = cwd_state.exists()
    user = VkUser(vk, 4004)
    first = await start_polling(make_channel(engine, photos, vk, data_dir), vk)
    try:
        await user.command("start")
        await user.expect("menu.welcome", "menu.prompt")
    finally:
        await first.stop()
    assert await position(engine, vk) == "1"
    assert not (data_dir / "vkbottle").exists()  # the database keeps it, no file under DATA_DIR
    assert cwd_state.exists() == had_cwd_state  # nothing written to the working directory

    await user.press("menu:new")  # while nobody polls
    await user.command("help")
    assert len(vk.events) - vk.confirmed >= 2  # both queued and not handled: nobody polls
    assert user.quiet()

    # the next leader runs on another host: its own DATA_DIR, the same database
    second = await start_polling(make_channel(engine, photos, vk, tmp_path / "another-host"), vk)
    try:
        await user.expect("report.category.ask", "help.text", "report.category.ask")
        await vk.settled()
        assert await position(engine, vk) == "3"
    finally:
        await second.stop()
    assert user.quiet()  # nothing from before the saved position was handled again


async def test_a_ts_file_of_a_single_host_install_is_moved_to_the_database_once(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> None:
    """An upgrade keeps its place: vkbottle's DATA_DIR file is read while the database has no position, then
    the database is the truth (the file is never read again)."""
    data_dir = tmp_path / "data"
    state = data_dir / "vkbottle" / "bot-polling" / f"{vk.group_id}.json"
    state.parent.mkdir(parents=True)
    user = VkUser(vk, 4006)
    await user.command("start")  # handled before the upgrade: the file says so
    state.write_text(json.dumps({"ts": "1"}))
    await user.command("help")  # sent while the upgrade ran
    first = await start_polling(make_channel(engine, photos, vk, data_dir), vk)
    try:
        await user.expect("help.text", "menu.prompt")
        await vk.settled()
        assert await position(engine, vk) == "2"
    finally:
        await first.stop()
    assert user.quiet()  # /start was not answered again

    state.write_text(json.dumps({"ts": "0"}))  # a stale file left behind is not read any more
    second = await start_polling(make_channel(engine, photos, vk, data_dir), vk)
    try:
        await vk.settled()
        assert user.quiet()
        assert await position(engine, vk) == "2"
    finally:
        await second.stop()


async def test_long_poll_gets_a_new_key_when_the_old_one_expired(polling: VkChannel, vk: FakeVk) -> None:
    user = VkUser(vk, 4005)
    servers = len(vk.calls_of("groups.getLongPollServer"))
    await vk.fail_long_poll(2)
    await wait_for(lambda: len(vk.calls_of("groups.getLongPollServer")) > servers, what="a new key")
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    assert len(vk.calls_of("groups.getLongPollServer")) == servers + 1


async def test_error_6_backs_off_then_delivers_once(polling: VkChannel, vk: FakeVk) -> None:
    user = VkUser(vk, 5005)
    vk.fail("messages.send", 6, 6, 6)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    assert len(vk.calls_of("messages.send")) == 5
    assert vk.duplicates == []


async def test_a_send_whose_answer_was_lost_is_not_delivered_twice(polling: VkChannel, vk: FakeVk) -> None:
    user = VkUser(vk, 5006)
    vk.lose_responses("messages.send", 1)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    sends = vk.calls_of("messages.send")
    assert len(sends) == 3 and sends[0]["random_id"] == sends[1]["random_id"]
    assert len(vk.duplicates) == 1
    await vk.settled()
    assert user.quiet()


async def test_a_poll_whose_save_finds_a_later_position_resumes_from_there_instead_of_answering_again(
    polling: VkChannel, vk: FakeVk, engine: Engine
) -> None:
    """Two workers poll for a moment when a leader is deposed before it noticed. The one behind — the deposed
    leader, or a new leader that started before the deposed one's last save — learns it when its save finds a
    later position, and resumes from there: it does not answer the events the other worker answered (a repeat
    of a chat's latest event would ask its question again)."""
    first = VkUser(vk, 6001)
    await first.command("start")
    await first.expect("menu.welcome", "menu.prompt")
    await vk.settled()
    await DbPollPositions(engine.db).save(f"vk:{vk.group_id}", "5")  # another worker answered events 2–5
    second = VkUser(vk, 6002)
    await second.command("start")  # fetched and answered before this worker can know
    await second.expect("menu.welcome", "menu.prompt")
    await wait_for(lambda: vk.confirmed == 5, what="the poll to resume from the saved position")

    others = [VkUser(vk, 6003 + n) for n in range(4)]
    for user in others:
        await user.command("start")  # events 3–5 (the other worker's) and 6
    await others[-1].expect("menu.welcome", "menu.prompt")
    await vk.settled()
    assert all(user.quiet() for user in others[:-1])
    assert await position(engine, vk) == "6"


async def test_a_deposed_leaders_poller_stops_without_trying_its_failing_batch_again(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> None:
    """A leader that lost its lock is stopped when it notices, often with a batch in hand whose events fail
    (the database dropped it): the stop ends the batch's pause between tries at once and tries nothing more,
    rather than handle the batch beside the new leader; its `ts` is left for the next leader."""
    channel = await start_polling(make_channel(engine, photos, vk, tmp_path / "data"), vk)
    channel.api.retries = 0  # the VK error reaches the batch at once …
    channel.api.backoff = channel.api.max_backoff  # … which pauses BATCH_BACKOFF_MAX before the next try
    user = VkUser(vk, 5010)
    vk.fail("messages.send", 10)  # once: a next try would go through
    try:
        await user.command("start")
        await wait_for(lambda: len(vk.calls_of("messages.send")) == 1, what="the first try")
    finally:
        await channel.stop()
    assert len(vk.calls_of("messages.send")) == 1
    assert user.quiet()
    assert await position(engine, vk) is None


# --- Callback API ---------------------------------------------------------------------------------------
@pytest.fixture
async def webhook(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> AsyncIterator[tuple[VkChannel, str]]:
    http = web.Application()
    channel = make_channel(engine, photos, vk, tmp_path / "data", secret="s3cret", callback_api=True)
    await channel.start(http)
    http_runner, url = await serve(http)
    yield channel, url + CALLBACK_PATH
    await channel.stop()
    await http_runner.cleanup()


async def test_callback_confirmation_with_the_code_from_the_api(
    webhook: tuple[VkChannel, str], vk: FakeVk
) -> None:
    _channel, url = webhook
    assert await vk.post_callback(url, vk.confirmation_request()) == (200, vk.confirmation_code)
    assert len(vk.calls_of("groups.getCallbackConfirmationCode")) == 1


async def test_callback_confirmation_with_the_configured_code(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> None:
    http = web.Application()
    channel = make_channel(
        engine, photos, vk, tmp_path, confirmation_code="from-env", group_id=vk.group_id, callback_api=True
    )
    await channel.start(http)
    http_runner, url = await serve(http)
    try:
        assert await vk.post_callback(url + CALLBACK_PATH, vk.confirmation_request()) == (200, "from-env")
        other = {"type": "confirmation", "group_id": vk.group_id + 1}
        assert (await vk.post_callback(url + CALLBACK_PATH, other))[0] == 403
        assert vk.calls_of("groups.getCallbackConfirmationCode") == []
    finally:
        await channel.stop()
        await http_runner.cleanup()


async def test_callback_refuses_a_wrong_secret_and_handles_a_duplicate_once(
    webhook: tuple[VkChannel, str], vk: FakeVk, engine: Engine
) -> None:
    _channel, url = webhook
    user = VkUser(vk, 6006)
    start = vk.message_new(user.peer_id, "/start")
    assert (await vk.post_callback(url, start, secret="wrong"))[0] == 403
    assert (await vk.post_callback(url, start))[0] == 403  # no secret at all
    assert user.quiet()
    assert await vk.post_callback(url, start, secret="s3cret") == (200, "ok")
    await user.expect("menu.welcome", "menu.prompt")  # handled before `ok`
    assert await vk.post_callback(url, start, secret="s3cret") == (200, "ok")  # VK sends it again
    await user.expect("menu.prompt")  # handled once; the question asked again (the answer may be lost)
    assert await vk.post_callback(url, start, secret="s3cret") == (200, "ok")  # and again
    await vk.settled()
    assert user.quiet()  # the re-ask's random_id is the same: VK delivers it once
    assert await engine.db.run(lambda store: store.tickets.of(ChatRef("vk", str(user.peer_id)), 10)) == []


async def test_a_report_through_the_callback_api(webhook: tuple[VkChannel, str], vk: FakeVk) -> None:
    _channel, url = webhook

    async def deliver(update: dict) -> None:
        assert await vk.post_callback(url, update, secret="s3cret") == (200, "ok")

    user = VkUser(vk, 6007, deliver=deliver)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    await user.press("menu:new")
    await user.expect("report.category.ask")
    await user.press("cat:roads")
    await user.expect("report.subcategory.ask")
    await user.press(user.button_data()[0])
    await user.expect("report.location.ask")
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")
    await user.say("Глубокая яма на проезжей части у остановки.")
    await user.expect("report.photos.ask")
    await user.photos(jpeg_bytes())
    await user.expect("report.photos.ask_more")
    assert len(vk.calls_of("messages.sendMessageEventAnswer")) == 3


# --- outbox delivery (ChannelSender) --------------------------------------------------------------------
async def test_deliver_uploads_each_photo_once_and_a_retry_is_not_sent_twice(
    polling: VkChannel, vk: FakeVk, engine: Engine, photos: PhotoStore
) -> None:
    shas = [await stored_photo(engine, photos, (i * 60, 20, 20)) for i in range(2)]
    staff = ChatRef("vk", "7007", "7007")
    reply = Reply(
        "Новое обращение № 1",
        buttons=((("Взять", "staff:take:1"), ("Отклонить", "staff:reject:1")),),
        photos=tuple(Photo(s) for s in shas),
        location=Location(*CENTRE),
        chat=staff,
    )
    await polling.sender.deliver(OutgoingMessage(id=11, reply=reply))
    [message] = vk.sent_to(7007)
    assert message.photos == [photos.read(s) for s in shas]  # the same bytes
    assert (message.lat, message.long) == CENTRE
    assert message.keyboard is not None and message.random_id < 0
    uploads = len(vk.calls_of("photos.getMessagesUploadServer"))
    assert uploads == 2 and len(vk.calls_of("photos.saveMessagesPhoto")) == 2

    await polling.sender.deliver(OutgoingMessage(id=11, reply=reply, attempt=1))  # the worker retries
    assert len(vk.sent_to(7007)) == 1 and len(vk.duplicates) == 1
    await polling.sender.deliver(OutgoingMessage(id=12, reply=reply))  # another message, same photos
    assert len(vk.sent_to(7007)) == 2
    assert len(vk.calls_of("photos.getMessagesUploadServer")) == uploads  # cached

    # a press on the card takes its keyboard off and keeps its photos and place
    press = vk.message_event(
        7007, {"b": "staff:take:1"}, conversation_message_id=message.conversation_message_id
    )
    await vk.push(press)
    await wait_for(lambda: message.edits == 1, what="the card's keyboard removed")
    assert message.keyboard is None and message.photos == [photos.read(s) for s in shas]
    assert (message.lat, message.long) == CENTRE and message.text == "Новое обращение № 1"


async def test_deliver_failures_are_classified(polling: VkChannel, vk: FakeVk) -> None:
    reply = Reply("Статус обращения изменён", chat=ChatRef("vk", "8008", "8008"))
    vk.blocked.add(8008)
    with pytest.raises(DeliveryError) as blocked:
        await polling.sender.deliver(OutgoingMessage(id=21, reply=reply))
    assert blocked.value.permanent
    vk.blocked.clear()
    vk.fail("messages.send", 7)
    with pytest.raises(DeliveryError) as denied:
        await polling.sender.deliver(OutgoingMessage(id=22, reply=reply))
    assert denied.value.permanent
    vk.fail("messages.send", *[6] * 6)  # more than the retries
    with pytest.raises(DeliveryError) as flooded:
        await polling.sender.deliver(OutgoingMessage(id=23, reply=reply))
    assert not flooded.value.permanent and flooded.value.retry_after
    await polling.sender.deliver(OutgoingMessage(id=23, reply=reply))
    assert len(vk.sent_to(8008)) == 1
    vk.fail("messages.send", 9)
    with pytest.raises(DeliveryError) as flood:
        await polling.sender.deliver(OutgoingMessage(id=24, reply=reply))
    assert not flood.value.permanent and flood.value.retry_after
    with pytest.raises(DeliveryError) as nobody:
        await polling.sender.deliver(OutgoingMessage(id=25, reply=Reply("x")))
    assert nobody.value.permanent
    missing = Reply("Фото", photos=(Photo("f" * 64),), chat=reply.chat)
    with pytest.raises(DeliveryError) as gone:
        await polling.sender.deliver(OutgoingMessage(id=26, reply=missing))
    assert gone.value.permanent
    await polling.sender.reply(8008, [missing], "evt-missing")  # a reply goes without the photo
    assert vk.sent_to(8008)[-1].text == "Фото" and vk.sent_to(8008)[-1].photos == []


# --- pieces -----------------------------------------------------------------------------------------------
async def test_rate_limiter_allows_at_most_rate_per_window() -> None:
    """Read at the instants the limiter granted (its own clock's readings), not when the loop got round to
    noting them: under load a late note made two grants look closer than they were (a flaky test)."""
    readings: list[float] = []

    def clock() -> float:
        readings.append(time.monotonic())
        return readings[-1]

    limiter = RequestWindow(rate=5, per=0.1, clock=clock)
    started = time.monotonic()
    granted = []
    for _ in range(11):
        await limiter.acquire()
        granted.append(readings[-1])  # acquire's last reading is the instant it granted
    assert granted[-1] - started >= 0.2
    assert all(granted[i + 5] - granted[i] >= 0.1 for i in range(len(granted) - 5))


async def test_api_calls_keep_to_the_rate_limit(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> None:
    """The fake notes when a call arrives, which lags its grant by a varying delay; calls go one after
    another, so call i arrived before call i+1 was granted, and the grants of calls i+1 … i+5 (five, against
    four allowed per 0.1 s) span at least 0.1 s: any six consecutive arrivals span more than 0.1 s."""
    channel = make_channel(engine, photos, vk, tmp_path, limiter=RequestWindow(rate=4, per=0.1))
    try:
        started = time.monotonic()
        await channel.sender.reply(9009, [Reply(f"{i}") for i in range(10)], "evt")
        assert time.monotonic() - started >= 0.2
        times = vk.call_times
        assert len(times) == 10 and all(times[i + 5] - times[i] >= 0.1 for i in range(5))
    finally:
        await channel.stop()


def test_the_factory_needs_a_token(tmp_path: Path) -> None:
    assert vk_package.create_channel in runner.channel_factories()
    app = SimpleNamespace(
        settings=Settings(_env_file=None, data_dir=tmp_path),
        engine=None,
        db=None,
        photos=None,
        shared_pace=lambda _name, _rate: None,  # SQLite's answer: this process paces itself
        poll_positions=lambda: None,
    )
    assert vk_package.create_channel(app) is None  # type: ignore[arg-type]
    app.settings = Settings(_env_file=None, data_dir=tmp_path, vk_group_token="t", vk_confirmation_code="c")
    channel = vk_package.create_channel(app)  # type: ignore[arg-type]
    assert isinstance(channel, VkChannel) and channel.confirmation_code == "c"
    assert channel.state_dir == tmp_path / "vkbottle"


async def test_commands_carry_the_users_name(polling: VkChannel, vk: FakeVk) -> None:
    user = VkUser(vk, 9202)
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    await user.command("help")
    await user.expect("help.text", "menu.prompt")
    await user.say("просто текст")
    await user.receive(1)
    assert [c["user_ids"] for c in vk.calls_of("users.get")] == ["9202"]  # asked once, for a command
    assert await polling.pipeline.user_name("9202") == "Пользователь 9202"
    assert await polling.pipeline.user_name("-5") == ""


async def test_photos_that_cannot_be_used_are_explained(engine: Engine, vk: FakeVk, tmp_path: Path) -> None:
    small_store = PhotoStore(tmp_path / "photos", max_bytes=10_000)
    channel = await start_polling(make_channel(engine, small_store, vk, tmp_path / "data"), vk)
    try:
        user = VkUser(vk, 9301)
        await to_photo_step(user)
        await user.photos(jpeg_bytes((10, 10, 10), (800, 600)) + b"\0" * 20_000)  # over the limit
        await user.expect("input.photo_too_large", "report.photos.ask")
        await user.photos(b"this is not an image")
        await user.expect("input.bad_photo", "report.photos.ask")
        gone = vk.photo_attachment(b"")
        gone["photo"]["sizes"][1]["url"] = f"{vk.url}/files/missing.jpg"  # 404
        await user.send(attachments=[gone])
        await user.expect("input.bad_photo", "report.photos.ask")
    finally:
        await channel.stop()


async def test_a_slow_geocoder_is_announced_then_answered(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> None:
    """The slow-geocoder notice: a lookup over `progress_after` gets a short "checking the address…" first."""
    from storage.geocoding import CachedGeocoder, NominatimGeocoder, user_agent
    from tests.geo_fakes import serve_fake_geocoder

    async for fake_geo in serve_fake_geocoder():
        fake_geo.mode, fake_geo.delay = "slow", 0.4
        geocoder = CachedGeocoder(NominatimGeocoder(fake_geo.url, user_agent()), engine.db)
        slow = Engine(
            engine.db, engine.municipality, clock=engine.clock, geocoder=geocoder, progress_after=0.05
        )
        channel = await start_polling(make_channel(slow, photos, vk, tmp_path / "data"), vk)
        try:
            user = VkUser(vk)
            await user.command("new")
            await user.expect("report.category.ask")
            await user.press("cat:roads")
            await user.expect("report.subcategory.ask")
            await user.press(user.button_data()[0])
            await user.expect("report.location.ask")
            await user.pin(*CENTRE)
            await user.expect("report.place.checking", "report.place.confirm_pin")
        finally:
            await channel.stop()


# --- the map as a VK Mini App in the place step -------------------------------------------------------------
MAP_APP_ID = 51234


async def test_the_place_step_offers_the_map_mini_app_when_vk_app_id_is_set(
    engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path
) -> None:
    channel = await start_polling(
        make_channel(engine, photos, vk, tmp_path / "data", map_app_id=MAP_APP_ID, group_id=vk.group_id), vk
    )
    try:
        user = VkUser(vk, 9301)
        await to_place_step(user)
        # under *send location*, in a row of its own (the fake refuses it beside another button, as VK does)
        assert user.keyboard()[-2:] == [
            {"type": "location"},
            {
                "type": "open_app",
                "app_id": MAP_APP_ID,
                "owner_id": -vk.group_id,
                "label": t("ru", "messenger_map.button"),
            },
        ]
        await user.pin(*CENTRE)  # the pin still works beside it
        await user.expect("report.description.ask")
        assert not any(b["type"] == "open_app" for b in user.keyboard())  # offered only in the place step
    finally:
        await channel.stop()


async def test_no_mini_app_button_without_vk_app_id(polling: VkChannel, vk: FakeVk) -> None:
    user = VkUser(vk, 9302)
    await to_place_step(user)
    assert {"type": "location"} in user.keyboard()
    assert not any(b["type"] == "open_app" for b in user.keyboard())


def test_the_factory_offers_the_mini_app_only_with_vk_app_id_and_the_widget_on(tmp_path: Path) -> None:
    """The Mini App shows the widget's map page, which is served only when WIDGET_ORIGINS is set."""
    base = {"_env_file": None, "data_dir": tmp_path, "vk_group_token": "t", "vk_group_id": 77}
    cases = [
        ({}, None),
        ({"vk_app_id": MAP_APP_ID}, None),  # the widget is off: no map page to open
        ({"widget_origins": "self"}, None),
        ({"vk_app_id": MAP_APP_ID, "widget_origins": "self"}, MiniApp(MAP_APP_ID, -77)),
    ]
    for extra, expected in cases:
        app = SimpleNamespace(
            settings=Settings(**base, **extra),
            engine=None,
            db=None,
            photos=None,
            shared_pace=lambda _n, _r: None,
            poll_positions=lambda: None,
        )
        channel = vk_package.create_channel(app)  # type: ignore[arg-type]
        assert channel is not None and channel.sender.map_app == expected, extra
