"""The Telegram contract: the same residents, through aiogram and through python-telegram-bot.

Real library code talks HTTP to the fake Bot API (tests/fakes/telegram_api.py), over polling and over the
webhook route, and the engine runs on real storage. Every test runs once per library.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.exc import OperationalError

from bots.telegram import make_api
from bots.telegram.channel import TelegramChannel
from core.engine import Engine
from core.messages import ChatRef, Location, Photo, Reply
from core.ports import DeliveryError, OutgoingMessage
from core.texts import t
from storage.photos import PhotoStore
from tests.fakes import images
from tests.fakes.telegram_api import TOKEN, FakeTelegram, TelegramUser, text_is_any
from tests.support import jpeg_bytes, stored_photo
from tests.telegram_support import (
    CENTRE,
    FAST,
    PUBLIC_URL,
    SECRET,
    Harness,
    open_report,
    telegram_bot,
    ticket,
    user_chat,
)


# --- the whole report ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_full_report_with_an_album_and_a_pin(bot: Harness, photos: PhotoStore, mode: str) -> None:
    channel = await bot.start(mode)
    fake = bot.fake
    assert set(fake.commands) == {None, "ru", "en"}
    for lang in ("ru", "en"):  # the residents' privacy commands in the menu too, described in each language
        assert [(c["command"], c["description"]) for c in fake.commands[lang]] == [
            (name, t(lang, f"commands.{name}"))
            for name in ("start", "new", "my", "help", "language", "cancel", "privacy", "mydata", "forget")
        ]
    assert fake.commands[None] == fake.commands["ru"]  # the default: DEFAULT_LANGUAGE
    if mode == "polling":
        await fake.wait_for(lambda: fake.method_calls("getUpdates"))
        first_poll = next(i for i, c in enumerate(fake.calls) if c.method == "getUpdates")
        assert any(c.method == "deleteWebhook" for c in fake.calls[:first_poll])
    else:
        assert (
            fake.webhook["url"] == PUBLIC_URL + "/telegram/webhook" and fake.webhook["secret_token"] == SECRET
        )
        assert not fake.method_calls("getUpdates")

    user = bot.user()
    await open_report(user)
    ask = user.replies[-1]
    assert ask.keyboard()[0] == {"text": t("ru", "report.location.button"), "request_location": True}
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")
    await user.say("Глубокая яма на проезжей части, машины объезжают по встречной.")
    await user.expect("report.photos.ask")

    images = [jpeg_bytes((40 * i, 90, 20), (320, 240)) for i in range(1, 4)]
    await user.photos(*images)
    await user.expect("report.photos.ask_more")  # one answer for the whole album
    assert "3 из 5" in user.replies[0].text
    await user.press("photos:done")
    await user.expect("report.review.ask")
    await user.press("review:submit")
    await user.expect("report.submitted", "menu.prompt")

    made = await ticket(bot.engine)
    assert made is not None and made.status.value == "assigned"
    assert (made.lat, made.lon) == CENTRE
    # the largest size of each photo, in album order, stored under its content address
    assert list(made.photos) == [photos.store(data).sha256 for data in images]
    downloaded = [c.params["file_id"] for c in fake.method_calls("getFile")]
    assert [fake.files[f] for f in downloaded] == images
    # every press answered, and the keyboard it was on taken off; over the webhook, in its responses
    assert len(fake.callback_answers) == 5
    answers = fake.method_calls("answerCallbackQuery")
    assert [c.in_webhook_reply for c in answers] == [mode == "webhook"] * 5
    # parameters as JSON: a URL-encoded form cost a third of the CPU of an answer (issue 17)
    assert {c.content_type for c in fake.method_calls("sendMessage")} == {"application/json"}
    pressed = [m for m in fake.to(user.user_id) if m.edits]
    assert len(pressed) == 5 and not any(m.buttons() for m in pressed)
    assert fake.to(user.user_id)[-1].buttons()  # the menu after submitting stays usable
    assert channel.mode == mode


async def test_typed_address_and_the_location_keyboard(bot: Harness) -> None:
    await bot.start()
    user = bot.user(language="en")
    await open_report(user)
    ask = user.replies[-1]
    assert ask.keyboard()[0] == {"text": "📍 Send my location", "request_location": True}
    assert [b["text"] for b in ask.keyboard()[1:]] == ["✖️ Cancel"]
    await user.say("ул. Карла Маркса, 14")
    await user.expect("report.description.ask")
    await user.say("The street light has not worked for a week.")
    await user.press("photos:done")
    await user.expect("report.review.ask")
    await user.press("review:submit")
    await user.expect("report.submitted", "menu.prompt")
    assert user.replies[0].removes_keyboard  # the first message without a keyboard of its own
    assert [m.removes_keyboard for m in bot.fake.to(user.user_id)].count(True) == 1
    made = await ticket(bot.engine)
    assert made is not None and made.address == "ул. Карла Маркса, 14" and made.lat is None


async def test_the_cancel_button_of_the_location_keyboard_cancels(bot: Harness) -> None:
    await bot.start()
    user = bot.user()
    await open_report(user)
    await user.say(t("ru", "report.cancel"))  # what the reply keyboard's text button types
    await user.expect("cancel.done")
    state = await bot.engine.db.run(lambda store: store.dialogs.load(user_chat(user)))
    assert state is not None and state.pop("last_event", None)
    assert state == {"lang": "ru", "seen": True}


# --- bad input ----------------------------------------------------------------------------------------------
async def test_bad_inputs_get_an_answer_and_change_nothing(bot: Harness) -> None:
    await bot.start()
    user = bot.user()
    await user.command("start")
    old_menu, _ = user.find_button("menu:new")
    await open_report(user)
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")

    await user.sticker()
    await user.expect("input.unsupported", "report.description.ask")
    assert "Стикер" in user.replies[0].text or "стикер" in user.replies[0].text.lower()
    await user.voice()
    await user.expect("input.unsupported", "report.description.ask")
    await user.document()
    await user.expect("input.unsupported", "report.description.ask")
    await user.say("я" * 4096)
    await user.expect("report.description.too_long", "report.description.ask")
    # a button from a message long gone: answered, and the dialog is where it was
    await user.send(user.callback(old_menu, "cat:roads"))
    await user.expect("button.stale", "report.description.ask")
    assert bot.fake.callback_answers[-1]

    await user.say("Глубокая яма на проезжей части у остановки.")
    await user.expect("report.photos.ask")
    # a photo sent "as a file" is still a photo
    await user.document("IMG_0001.jpg", "image/jpeg", jpeg_bytes((10, 200, 10), (200, 100)))
    await user.expect("report.photos.ask_more")
    await user.document("IMG_0002.png", "image/png", b"not really a png")
    await user.expect("input.bad_photo", "report.photos.ask_more")
    huge = {
        "file_id": "huge",
        "file_unique_id": "uhuge",
        "width": 9000,
        "height": 6000,
        "file_size": 25 << 20,
    }
    await user.send(user.message(photo=[huge]))  # over the Bot API's 20 MB: not even downloaded
    await user.expect("input.photo_too_large", "report.photos.ask_more")
    assert "huge" not in [c.params.get("file_id") for c in bot.fake.method_calls("getFile")]


async def test_image_bombs_sent_as_file_or_photo_are_refused_as_too_many_pixels(
    bot: Harness, photos: PhotoStore
) -> None:
    """A 336 KB 9400×9400 PNG cost 1.15 GB; a 12000×12000 JPEG was answered "send a JPEG or PNG"."""
    await bot.start()
    user = bot.user()
    await open_report(user)
    await user.pin(*CENTRE)
    await user.say("Глубокая яма на проезжей части у остановки.")
    await user.expect("report.photos.ask")

    await user.document("bomb.png", "image/png", images.png(9400, 9400))
    await user.expect("input.photo_too_many_pixels", "report.photos.ask")
    assert "40" in user.replies[0].text
    await user.photos(images.jpeg_claiming(12000, 12000))
    await user.expect("input.photo_too_many_pixels", "report.photos.ask")
    await user.document("scan.tiff", "image/png", _tiff())  # a TIFF under a PNG's name
    await user.expect("input.photo_format", "report.photos.ask")
    assert not photos.root.exists() or not any(photos.root.rglob("*.jpg"))

    await user.photos(images.photo())  # an ordinary photo still goes through
    await user.expect("report.photos.ask_more")


def _tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buffer, "TIFF")
    return buffer.getvalue()


async def test_long_texts_are_split_and_long_captions_sent_apart(bot: Harness, photos: PhotoStore) -> None:
    channel = await bot.start()
    sha = await stored_photo(bot.engine, photos)
    to = ChatRef("telegram", "6006", "6006")
    paragraph = "Абзац длинного ответа организации, с подробностями. " * 20
    text = "\n\n".join([paragraph] * 6)  # ~6,300 characters
    await channel.sender.deliver(OutgoingMessage(1, Reply(text=text, chat=to, buttons=((("OK", "ok"),),))))
    parts = bot.fake.to(6006)
    assert len(parts) == 2 and all(len(m.text) <= 4096 for m in parts)
    assert " ".join(" ".join(m.text for m in parts).split()) == " ".join(text.split())
    assert parts[-1].buttons() == [("OK", "ok")] and not parts[0].buttons()

    await channel.sender.deliver(
        OutgoingMessage(2, Reply(text="Короткая подпись", photos=(Photo(sha),), chat=to))
    )
    assert bot.fake.to(6006)[-1].kind == "photo" and bot.fake.to(6006)[-1].text == "Короткая подпись"
    await channel.sender.deliver(OutgoingMessage(3, Reply(text="п" * 1500, photos=(Photo(sha),), chat=to)))
    assert [m.kind for m in bot.fake.to(6006)[-2:]] == ["photo", "text"]
    assert bot.fake.to(6006)[-2].text == ""


# --- delivery -----------------------------------------------------------------------------------------------
async def test_429_on_send_message_waits_retry_after_then_delivers(bot: Harness) -> None:
    await bot.start()
    bot.fake.fail("sendMessage", 429, retry_after=1)
    user = bot.user()
    started = time.monotonic()
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    attempts = bot.fake.method_calls("sendMessage")
    assert len(attempts) == 3  # the refused one, then both messages
    assert attempts[1].at - attempts[0].at >= 0.95
    assert time.monotonic() - started < 3


async def test_network_errors_are_retried(bot: Harness) -> None:
    await bot.start()
    bot.fake.fail("sendMessage", 502, "Bad Gateway", times=2)
    user = bot.user()
    await user.command("help")
    assert len(user.texts()) == 2


# --- webhook ------------------------------------------------------------------------------------------------
async def test_webhook_refuses_a_wrong_or_missing_secret(bot: Harness) -> None:
    await bot.start("webhook")
    user = bot.user()
    update = user.message(text="/start")
    assert await bot.fake.post_webhook(update, secret="wrong") == 403
    assert await bot.fake.post_webhook(update, secret="") == 401
    assert not bot.fake.method_calls("sendMessage")
    assert await bot.fake.post_webhook(update) == 200
    assert len(bot.fake.method_calls("sendMessage")) == 2


async def test_webhook_update_delivered_twice_creates_one_ticket(bot: Harness) -> None:
    await bot.start("webhook")
    user = bot.user()
    await open_report(user)
    await user.say("ул. Ленина, 5")
    await user.say("Не горит фонарь во дворе уже неделю.")
    await user.press("photos:done")
    await user.expect("report.review.ask")
    message, data = user.find_button("review:submit")
    submit = user.callback(message, data)
    statuses = await asyncio.gather(bot.fake.post_webhook(submit), bot.fake.post_webhook(submit))
    assert statuses == [200, 200]
    assert await bot.fake.post_webhook(submit) == 200  # again later
    assert await ticket(bot.engine, 2) is None
    assert await ticket(bot.engine, 1) is not None
    submitted = [m for m in bot.fake.to(user.user_id) if "№ 1" in m.text]
    assert len(submitted) == 1


async def test_webhook_answers_500_on_a_transient_failure_and_the_retry_succeeds(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.start("webhook")
    user = bot.user()
    update = user.message(text="/start")
    engine = bot.engine
    real = engine.handle
    before = len(bot.fake.to(user.user_id))
    failures = [OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))]

    async def flaky(incoming: Any, progress: Any = None) -> Any:
        if failures:
            raise failures.pop()
        return await real(incoming, progress)

    monkeypatch.setattr(engine, "handle", flaky)
    assert await bot.fake.post_webhook(update) == 500  # Telegram sends it again; no apology for that
    assert await bot.fake.post_webhook(update) == 200
    after = bot.fake.to(user.user_id)[before:]
    assert [text_is_any(m.text, "channel.error") for m in after] == [False, False]
    assert text_is_any(after[0].text, "menu.welcome") and text_is_any(after[1].text, "menu.prompt")


# --- restart ------------------------------------------------------------------------------------------------
async def test_restart_mid_dialog_resumes(bot: Harness) -> None:
    await bot.start()
    user = bot.user()
    await open_report(user)
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")
    await bot.stop()
    assert not bot.fake.updates  # everything handled was confirmed on the way out
    polls_before = len(bot.fake.method_calls("getUpdates"))

    await bot.start()
    assert len(bot.fake.method_calls("getUpdates")) >= polls_before
    await user.say("Глубокая яма на проезжей части у остановки.")
    await user.expect("report.photos.ask")
    await user.press("photos:done")
    await user.press("review:submit")
    await user.expect("report.submitted", "menu.prompt")


async def test_graceful_stop_finishes_an_album_in_hand(bot: Harness, photos: PhotoStore) -> None:
    await bot.start(options=replace(FAST, album_wait=5.0, album_limit=10.0))
    user = bot.user()
    await open_report(user)
    await user.pin(*CENTRE)
    await user.say("Глубокая яма на проезжей части у остановки.")
    images = [jpeg_bytes((200, 10 * i, 10)) for i in range(2)]
    updates = [user.message(**user.photo_content(d), media_group_id="g1") for d in images]
    bot.fake.push(*updates)
    assert bot.channel is not None
    pipeline = bot.channel.pipeline
    await bot.fake.wait_for(lambda: len(pipeline._in_flight) == 2, what="the album collected")
    started = time.monotonic()
    await bot.stop()  # does not wait out the album window, and does not drop it
    assert time.monotonic() - started < 3
    assert bot.fake.confirmed > updates[-1]["update_id"]
    texts = [m.text for m in bot.fake.to(user.user_id)]
    assert "2 из 5" in texts[-1]


async def test_an_update_not_handled_by_shutdown_is_not_confirmed(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stuck past the drain timeout: the offset stays below it, and the next run receives it again."""
    await bot.start(options=replace(FAST, drain_timeout=0.2))
    user = bot.user()
    await user.command("start")
    handled = bot.fake.confirmed
    stuck = asyncio.Event()

    async def hang(incoming: Any, progress: Any = None) -> Any:
        stuck.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(bot.engine, "handle", hang)
    update = user.message(text="/help")
    bot.fake.push(update)
    await asyncio.wait_for(stuck.wait(), 5)
    await bot.stop()
    assert handled <= bot.fake.confirmed <= update["update_id"]
    assert [u["update_id"] for u in bot.fake.updates] == [update["update_id"]]

    monkeypatch.undo()
    await bot.start()
    await bot.fake.wait_for(lambda: bot.fake.confirmed > update["update_id"])
    assert text_is_any(bot.fake.to(user.user_id)[-2].text, "help.text")


# --- outbox -------------------------------------------------------------------------------------------------
async def test_an_outbox_message_waits_for_its_chat_before_taking_a_bulk_slot(bot: Harness) -> None:
    """Regression (bench/cluster.py, staff told of every ticket: 160 outbox messages in five seconds at 30/s):
    a message took its bulk slot, then waited for its chat's own pace and went out up to seconds later, in
    other messages' slots."""
    channel = await bot.start(options=replace(FAST, limits=replace(FAST.limits, chat_rate=4, chat_burst=1)))
    loop = asyncio.get_running_loop()
    slots: list[float] = []

    class RecordedPace:
        async def wait(self) -> None:
            slots.append(loop.time())

    channel.sender.bulk_pace = RecordedPace()
    to = ChatRef("telegram", "6007", "6007")
    for n in (1, 2):  # the second one must wait 250 ms for the chat
        await channel.sender.deliver(OutgoingMessage(n, Reply(text=f"Уведомление {n}", chat=to)))
        assert loop.time() - slots[-1] < 0.1  # it went right after its slot
    assert [m.text for m in bot.fake.to(6007)] == ["Уведомление 1", "Уведомление 2"]


async def test_outbox_delivery_uploads_each_photo_once(bot: Harness, photos: PhotoStore) -> None:
    channel = await bot.start()
    shas = [await stored_photo(bot.engine, photos, (i * 60, 0, 0)) for i in range(3)]
    to = ChatRef("telegram", "7007", "7007")
    reply = Reply(
        text="Заявка № 1: новая",
        photos=tuple(Photo(s) for s in shas),
        location=Location(*CENTRE),
        buttons=((("Взять", "staff:take:1"),),),
        chat=to,
    )
    await channel.sender.deliver(OutgoingMessage(1, reply))
    sent = bot.fake.to(7007)
    assert [m.kind for m in sent] == ["photo", "photo", "photo", "location", "text"]
    assert [m.photo for m in sent[:3]] == [photos.read(s) for s in shas]
    assert sent[-1].buttons() == [("Взять", "staff:take:1")]
    first = bot.fake.method_calls("sendMediaGroup")[0]
    assert len(first.files) == 3 and all(
        item["media"].startswith("attach://") for item in first.params["media"]
    )

    await channel.sender.deliver(OutgoingMessage(2, replace(reply, text="Заявка № 1: снова")))
    second = bot.fake.method_calls("sendMediaGroup")[1]
    assert not second.files  # file_ids this time
    assert (first.content_type, second.content_type) == ("multipart/form-data", "application/json")
    assert [m.photo for m in bot.fake.to(7007)[5:8]] == [photos.read(s) for s in shas]

    # a new process (empty memory) still reuses the ids from the database
    await bot.stop()
    channel = await bot.start()
    await channel.sender.deliver(OutgoingMessage(3, replace(reply, text="", location=None, buttons=())))
    assert not bot.fake.method_calls("sendMediaGroup")[2].files

    missing = replace(reply, photos=(Photo("b" * 64),))  # the outbox contract: never going to work
    with pytest.raises(DeliveryError) as gone:
        await channel.sender.deliver(OutgoingMessage(4, missing))
    assert gone.value.permanent

    bot.fake.blocked.add(7007)
    with pytest.raises(DeliveryError) as blocked:
        await channel.sender.deliver(OutgoingMessage(5, reply))
    assert blocked.value.permanent


async def test_a_channel_never_started_delivers_outbox_messages(bot: Harness) -> None:
    """`otklik outbox flush` builds the channels and delivers without starting them (no getMe, no polling):
    each library's HTTP session must open on first use."""
    channel = TelegramChannel(make_api(bot.library, TOKEN, bot.fake.url), bot.engine, bot.db, bot.photos)
    try:
        reply = Reply(text="Заявка № 1: новая", buttons=((("Взять", "staff:take:1"),),))
        await channel.sender.deliver(
            OutgoingMessage(1, replace(reply, chat=ChatRef("telegram", "7007", "7007")))
        )
    finally:
        await channel.stop()
    [sent] = bot.fake.to(7007)
    assert sent.text == "Заявка № 1: новая" and sent.buttons() == [("Взять", "staff:take:1")]
    assert not bot.fake.method_calls("getMe")


async def test_outbox_message_resumes_after_a_failure_without_repeating_the_album(
    bot: Harness, photos: PhotoStore
) -> None:
    channel = await bot.start(options=replace(FAST, limits=replace(FAST.limits, max_retry_after=0.5)))
    shas = [await stored_photo(bot.engine, photos, (0, i * 90, 0)) for i in range(2)]
    reply = Reply(
        text="Работы выполнены",
        photos=tuple(Photo(s) for s in shas),
        buttons=((("5", "rate:1:5"),),),
        chat=ChatRef("telegram", "8008", "8008"),
    )
    bot.fake.fail("sendMessage", 429, retry_after=1)
    with pytest.raises(DeliveryError) as later:
        await channel.sender.deliver(OutgoingMessage(9, reply))
    assert later.value.retry_after == 1 and not later.value.permanent
    await channel.sender.deliver(OutgoingMessage(9, reply))
    assert len(bot.fake.method_calls("sendMediaGroup")) == 1
    assert [m.kind for m in bot.fake.to(8008)] == ["photo", "photo", "text"]


# --- the real process ---------------------------------------------------------------------------------------
@pytest.mark.e2e
async def test_otklik_run_serves_telegram_and_a_restart_resumes_the_dialog(tmp_path: Path) -> None:
    """`otklik run` stopped with SIGTERM mid-dialog and started again. Through python-telegram-bot: aiogram
    takes 5–15 s to import in each process, and the in-process tests above cover it the same way."""
    fake = await FakeTelegram().start()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_", "DATABASE_", "WEBHOOK_"))
    }
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=fake.url,
        TELEGRAM_LIBRARY="ptb",
        CONSENT_REQUIRED="false",  # consent through Telegram: tests/adapters/test_telegram_privacy.py
        DATA_DIR=str(tmp_path / "data"),
        GEOCODER="off",
        PYTHONUNBUFFERED="1",
        HTTP_PORT="0",  # a free port: nothing else listening on 8080 may fail the run
    )
    otklik = str(Path(sys.executable).with_name("otklik"))

    async def start() -> asyncio.subprocess.Process:
        polls = len(fake.method_calls("getUpdates"))
        process = await asyncio.create_subprocess_exec(
            otklik, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
        )
        await fake.wait_for(lambda: len(fake.method_calls("getUpdates")) > polls, 60, "polling to start")
        return process

    async def stop(process: asyncio.subprocess.Process) -> None:
        process.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()

    async def deliver(updates: list[dict[str, Any]]) -> None:
        fake.push(*updates)
        last = max(u["update_id"] for u in updates)
        await fake.wait_for(lambda: fake.confirmed > last, 10, f"update {last} handled")

    process = await start()
    try:
        user = TelegramUser(fake, deliver, 9009)
        await open_report(user)
        await user.pin(*CENTRE)
        await user.expect("report.description.ask")
        await stop(process)
        assert not fake.updates

        process = await start()
        await user.say("Глубокая яма на проезжей части у остановки.")
        await user.expect("report.photos.ask")
        await user.press("photos:done")
        await user.press("review:submit")
        await user.expect("report.submitted", "menu.prompt")
        assert "№ 1" in user.replies[0].text
    finally:
        if process.returncode is None:
            await stop(process)
        await fake.stop()


# --- a photo sent with a caption at the description step ---------------------------------
async def test_captioned_photo_at_the_description_step_is_kept_with_its_caption_as_the_description(
    bot: Harness, photos: PhotoStore
) -> None:
    await bot.start()
    user = bot.user()
    await open_report(user)
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")
    image = jpeg_bytes((120, 60, 200), (320, 240))
    await user.photos(image, caption="Глубокая яма на проезжей части у остановки.")
    texts = [m.text for m in user.replies if m.kind == "text"]
    assert texts[0] == "Подпись к фото сохранена как описание.\nДобавлено 1 фото."
    assert texts[1].startswith("Приложено фото: 1 из 5.")
    await user.press("photos:done")
    await user.expect("report.review.ask")
    await user.press("review:submit")
    made = await ticket(bot.engine)
    assert made is not None and made.description == "Глубокая яма на проезжей части у остановки."
    assert list(made.photos) == [photos.store(image).sha256]


# --- a slow geocoder shows "typing…" instead of silence ----------------------------------
async def test_a_slow_geocoder_shows_typing_then_the_answer(
    engine: Engine, photos: PhotoStore, library: str
) -> None:
    from storage.geocoding import CachedGeocoder, NominatimGeocoder, user_agent
    from tests.geo_fakes import serve_fake_geocoder

    async for fake_geo in serve_fake_geocoder():
        fake_geo.mode, fake_geo.delay = "slow", 0.4
        geocoder = CachedGeocoder(NominatimGeocoder(fake_geo.url, user_agent()), engine.db)
        slow = Engine(
            engine.db, engine.municipality, clock=engine.clock, geocoder=geocoder, progress_after=0.05
        )
        async with telegram_bot(slow, photos, library) as bot:
            await bot.start()
            user = bot.user()
            await open_report(user)
            await user.pin(*CENTRE)
            await user.expect("report.place.confirm_pin")
            assert bot.fake.chat_actions == [(user.user_id, "typing")]
            methods = [c.method for c in bot.fake.calls]
            assert methods.index("sendChatAction") < len(methods) - 1 - methods[::-1].index("sendMessage")


# --- the map as a Web App in the place step -----------------------------------------------------------------
MAP_PAGE = PUBLIC_URL + "/widget/map"


async def test_the_place_step_offers_the_map_as_a_web_app(bot: Harness) -> None:
    await bot.start(map_url=MAP_PAGE)
    user = bot.user(language="en")
    await open_report(user, map_offered=True)
    question, offer = user.replies[-2:]
    # the question keeps its reply keyboard (*Send my location*) under the input field…
    assert question.keyboard()[0] == {"text": "📍 Send my location", "request_location": True}
    # …and the map comes as an inline Web App button: only that launch gives the page signed initData
    assert offer.text == t("en", "messenger_map.prompt") and not offer.removes_keyboard
    assert offer.web_apps() == [(t("en", "messenger_map.button"), MAP_PAGE + "?app=telegram&lang=en")]
    assert offer.reply_markup == {
        "inline_keyboard": [
            [{"text": t("en", "messenger_map.button"), "web_app": {"url": offer.web_apps()[0][1]}}]
        ]
    }
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")


async def test_no_web_app_button_when_the_map_page_is_not_https(bot: Harness) -> None:
    """Telegram opens only https Web Apps (the fake refuses others with 400, as Telegram does): an http base
    URL must not cost the resident the place step."""
    await bot.start(map_url="http://127.0.0.1:8080/widget/map")
    user = bot.user()
    await open_report(user)
    ask = user.replies[-1]
    assert ask.keyboard()[0] == {"text": t("ru", "report.location.button"), "request_location": True}
    assert not any(m.web_apps() for m in bot.fake.to(user.user_id))
    assert not any(text_is_any(m.text, "messenger_map.prompt") for m in bot.fake.to(user.user_id))


# --- one bot, several workers: one rate ---------------------------------------------------------------------
async def test_direct_answers_of_two_workers_share_the_bots_rate(
    bot: Harness, library: str, tmp_path: Path
) -> None:
    """Regression: direct answers were paced per worker, so N workers sent N × 30 messages/s for one bot.
    Two senders (two workers' channels on one bot) take their per-bot rate from `App.pace`: together they
    keep to it (here 20/s, in distinct chats so that the per-chat pace plays no part)."""
    from bots.app import App
    from bots.settings import Settings
    from bots.telegram import make_api
    from bots.telegram.channel import TelegramChannel

    rate, per_worker = 20.0, 10
    limits = replace(FAST.limits, bot_rate=rate, bot_burst=1)
    app = App(
        settings=Settings(_env_file=None, data_dir=tmp_path), db=bot.db, photos=bot.photos, engine=bot.engine
    )  # type: ignore[call-arg, arg-type]
    pace = app.pace(f"telegram:{TOKEN.split(':')[0]}", rate)  # one per process on SQLite, a row on PostgreSQL
    workers = [
        TelegramChannel(
            make_api(library, TOKEN, bot.fake.url),
            bot.engine,
            bot.db,
            bot.photos,
            options=replace(FAST, limits=limits),
            bot_pace=pace,
        )
        for _ in range(2)
    ]
    assert all(worker.sender.max_per_second == 0 for worker in workers)  # the outbox does not book twice
    for worker in workers:
        await worker.api.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(
            *(
                worker.sender.send(9000 + 100 * n + i, Reply(text=f"{n}.{i}"))
                for n, worker in enumerate(workers)
                for i in range(per_worker)
            )
        )
        elapsed = loop.time() - started
    finally:
        for worker in workers:
            await worker.api.close()
    sent = len(bot.fake.method_calls("sendMessage"))
    assert sent == 2 * per_worker
    # 20 slots 1/20 s apart: the last at 0.95 s (each worker alone would have sent its 10 in 0.45 s)
    assert elapsed >= (sent - 1) / rate - 0.05, elapsed


class UnreachablePace:
    """The shared pace while its database is down (a `Pace` whose booking fails)."""

    async def wait(self) -> None:
        raise ConnectionError("the database is unreachable")


async def test_answers_still_go_when_the_shared_pace_is_unreachable(bot: Harness, library: str) -> None:
    """The shared rate lives in the database; a worker that cannot book a slot paces itself alone rather
    than leave the resident without an answer."""
    from bots.telegram import make_api
    from bots.telegram.channel import TelegramChannel

    worker = TelegramChannel(
        make_api(library, TOKEN, bot.fake.url),
        bot.engine,
        bot.db,
        bot.photos,
        options=FAST,
        bot_pace=UnreachablePace(),
    )
    await worker.api.start()
    try:
        await worker.sender.send(9100, Reply(text="still answered"))
    finally:
        await worker.api.close()
    assert [m.text for m in bot.fake.to(9100)] == ["still answered"]
