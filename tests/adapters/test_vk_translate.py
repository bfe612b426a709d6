"""VK events → Incoming: every input kind named, nothing dropped."""

from __future__ import annotations

import pytest

from bots.vk.translate import (
    ClientCaps,
    event_key,
    language,
    largest_photo_url,
    parse_text,
    translate_event,
    translate_message,
)
from core.messages import Incoming, Location, Photo
from tests.fakes.vk_api import FakeVk

vk = FakeVk()  # used only to build events; no server


async def _translate(update: dict, fetched: list[str] | None = None) -> Incoming:
    async def fetch(url: str) -> Photo | str:
        if fetched is not None:
            fetched.append(url)
        return Photo("a" * 64) if "bad" not in url else "bad_photo"

    incoming, _caps = await translate_message(update, vk.group_id, fetch)
    return incoming


async def test_text_command_and_chat() -> None:
    incoming = await _translate(vk.message_new(77, "Яма во дворе"))
    assert incoming.text == "Яма во дворе" and incoming.command is None
    assert (incoming.chat.channel, incoming.chat.chat_id, incoming.chat.user_id) == ("vk", "77", "77")
    incoming = await _translate(vk.message_new(77, "/language en"))
    assert (incoming.command, incoming.args, incoming.text) == ("language", "en", None)
    incoming = await _translate(vk.message_new(77, "start"))  # commands need the slash
    assert incoming.text == "start" and incoming.command is None


def test_parse_text_drops_a_mention_in_chats() -> None:
    assert parse_text("[club4242|@otklik] /help") == {"command": "help", "args": ""}
    assert parse_text("/ hello") == {"text": "/ hello"}
    assert parse_text("/") == {"text": "/"}


async def test_button_payloads() -> None:
    incoming = await _translate(vk.message_new(77, "Новое", payload='{"b":"menu:new"}'))
    assert incoming.button == "menu:new" and incoming.text is None
    start = await _translate(vk.message_new(77, "Начать", payload='{"command":"start"}'))
    assert start.command == "start"
    foreign = await _translate(vk.message_new(77, "Привет", payload='{"other":1}'))
    assert foreign.text == "Привет"
    event = translate_event(vk.message_event(77, {"b": "cat:roads"}), vk.group_id)
    assert event.button == "cat:roads" and event.chat.chat_id == "77"
    stale = translate_event(vk.message_event(77, {"x": 1}), vk.group_id)
    assert stale.button == ""


async def test_geo_attachment_is_a_location() -> None:
    incoming = await _translate(vk.message_new(77, geo=(52.287, 104.281)))
    assert incoming.location == Location(52.287, 104.281)


async def test_photos_take_the_largest_size_and_keep_the_caption() -> None:
    fetched: list[str] = []
    update = vk.message_new(77, "вот", attachments=[vk.photo_attachment(b"1"), vk.photo_attachment(b"2")])
    incoming = await _translate(update, fetched)
    assert len(incoming.photos) == 2 and incoming.text == "вот"
    sizes = [a["photo"]["sizes"] for a in update["object"]["message"]["attachments"]]
    assert fetched == [next(s["url"] for s in each if s["type"] == "z") for each in sizes]


def test_largest_photo_without_dimensions_goes_by_letter() -> None:
    photo = {"sizes": [{"type": "x", "url": "x", "width": 0, "height": 0}, {"type": "w", "url": "w"}]}
    assert largest_photo_url(photo) == "w"
    orig = {
        "sizes": [{"type": "x", "url": "x", "width": 604, "height": 400}],
        "orig_photo": {"url": "o", "width": 2000, "height": 1500},
    }
    assert largest_photo_url(orig) == "o"
    assert largest_photo_url({}) is None


async def test_a_photo_that_cannot_be_read_is_named() -> None:
    bad = {
        "type": "photo",
        "photo": {"sizes": [{"type": "x", "url": "http://x/bad.jpg", "width": 1, "height": 1}]},
    }
    incoming = await _translate(vk.message_new(77, attachments=[bad]))
    assert incoming.unsupported == "bad_photo" and not incoming.photos
    no_url = {"type": "photo", "photo": {"sizes": []}}
    assert (await _translate(vk.message_new(77, attachments=[no_url]))).unsupported == "bad_photo"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("sticker", "sticker"),
        ("audio", "audio"),
        ("audio_message", "voice"),
        ("video", "video"),
        ("doc", "document"),
        ("wall", "wall_post"),
        ("link", "link"),
        ("poll", "poll"),
        ("market", "other"),
    ],
)
async def test_attachments_we_cannot_use_are_named(kind: str, expected: str) -> None:
    incoming = await _translate(vk.message_new(77, attachments=[{"type": kind, kind: {}}]))
    assert incoming.unsupported == expected


async def test_a_link_preview_does_not_hide_the_text() -> None:
    update = vk.message_new(77, "Смотрите https://example.org", attachments=[{"type": "link", "link": {}}])
    incoming = await _translate(update)
    assert incoming.text == "Смотрите https://example.org" and incoming.unsupported is None


def test_language_from_client_info() -> None:
    assert language({"lang_id": 0}) == "ru"
    assert language({"lang_id": 3}) == "en"
    assert language({"lang_id": 97}) is None
    assert language({}) is None and language(None) is None


def test_client_caps() -> None:
    assert ClientCaps.of(None) == ClientCaps()
    caps = ClientCaps.of({"keyboard": True, "inline_keyboard": False, "button_actions": ["text"]})
    assert caps == ClientCaps(
        keyboard=True, inline_keyboard=False, callback=False, location=False, open_app=False
    )


def test_event_key_is_vks_event_id_with_a_fallback() -> None:
    update = vk.message_new(77, "x")
    assert event_key(update, vk.group_id) == update["event_id"]
    del update["event_id"]
    cmid = update["object"]["message"]["conversation_message_id"]
    assert event_key(update, vk.group_id) == f"{vk.group_id}:77:{cmid}"
    callback = vk.message_event(77, {"b": "x"}, event_id="abc")
    del callback["event_id"]
    assert event_key(callback, vk.group_id) == "cb:abc"


async def test_nothing_in_a_message_is_dropped() -> None:
    update = vk.message_new(77, "тут", geo=(52.28, 104.28), attachments=[vk.photo_attachment(b"1")])
    incoming = await _translate(update)
    assert incoming.location == Location(52.28, 104.28) and len(incoming.photos) == 1
    assert incoming.text == "тут"
    sticker = await _translate(vk.message_new(77, "", attachments=[{"type": "sticker", "sticker": {}}]))
    assert sticker.unsupported == "sticker" and sticker.text is None
    assert (await _translate(vk.message_new(77, ""))).text == ""
