"""The Telegram channel's pure parts: translation of updates (through both libraries' models), rendering of
replies within Telegram's limits, and the pace of sending."""

from __future__ import annotations

from typing import Any

import pytest

from bots.telegram import make_api
from bots.telegram.api import InlineKeyboard, ReplyKeyboard
from bots.telegram.render import (
    CallbackCodec,
    SendPhotos,
    SendText,
    render,
    split_text,
    utf16_len,
)
from bots.telegram.sender import Pace
from bots.telegram.translate import parse_command, translate
from core.messages import Location, Photo, Reply
from tests.fakes.telegram_api import TOKEN

SHA = "a" * 64


@pytest.fixture(params=["aiogram", "ptb"])
def parse(request: pytest.FixtureRequest) -> Any:
    api = make_api(request.param, TOKEN, "http://127.0.0.1:9")
    return api.parse_update


def message(**content: Any) -> dict[str, Any]:
    return {
        "update_id": 77,
        "message": {
            "message_id": 5,
            "date": 0,
            "chat": {"id": 42, "type": "private", "first_name": "Анна"},
            "from": {
                "id": 42,
                "is_bot": False,
                "first_name": "Анна",
                "last_name": "К.",
                "language_code": "en-GB",
            },
            **content,
        },
    }


def photo_sizes(*sizes: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [
        {"file_id": f, "file_unique_id": "u" + f, "width": w, "height": h, "file_size": w * h}
        for f, w, h in sizes
    ]


# --- translate ----------------------------------------------------------------------------------------------
def test_text_command_and_language(parse: Any) -> None:
    draft = translate(parse(message(text="Яма у дома")))
    assert draft.chat_id == 42 and draft.incoming is not None
    incoming = draft.incoming
    assert (incoming.text, incoming.command, incoming.event_key) == ("Яма у дома", None, "77")
    assert incoming.language == "en-GB" and incoming.display_name == "Анна К."
    assert incoming.chat.key == "telegram:42" and incoming.chat.user_id == "42"

    command = translate(parse(message(text="/language@otklik_bot en")), username="Otklik_Bot").incoming
    assert command is not None and (command.command, command.args) == ("language", "en")
    other_bot = translate(parse(message(text="/start@another_bot")), username="otklik_bot").incoming
    assert other_bot is not None and other_bot.command is None and other_bot.text == "/start@another_bot"


def test_the_largest_photo_size_is_the_one_to_fetch(parse: Any) -> None:
    sizes = photo_sizes(("small", 90, 60), ("big", 1280, 960), ("mid", 320, 240))
    draft = translate(parse(message(photo=sizes, caption="вот", media_group_id="g7")))
    assert draft.photo is not None and draft.photo.file_id == "big"
    assert draft.media_group_id == "g7" and draft.incoming is not None and draft.incoming.text == "вот"


def test_location_contact_and_image_documents(parse: Any) -> None:
    pin = translate(parse(message(location={"latitude": 52.28, "longitude": 104.28}))).incoming
    assert pin is not None and pin.location == Location(52.28, 104.28)
    contact = translate(
        parse(message(contact={"phone_number": "+79001234567", "first_name": "Анна"}))
    ).incoming
    assert contact is not None and contact.contact == "+79001234567"
    as_file = {"file_id": "doc", "file_unique_id": "udoc", "mime_type": "image/jpeg", "file_size": 1000}
    draft = translate(parse(message(document=as_file)))
    assert draft.photo is not None and draft.photo.file_id == "doc"


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        (
            "sticker",
            {"type": "regular", "width": 1, "height": 1, "is_animated": False, "is_video": False},
            "sticker",
        ),
        ("voice", {"duration": 2}, "voice"),
        ("audio", {"duration": 2}, "audio"),
        ("video", {"duration": 2, "width": 1, "height": 1}, "video"),
        ("video_note", {"duration": 2, "length": 1}, "video_note"),
        ("document", {"mime_type": "application/pdf"}, "document"),
    ],
)
def test_what_the_bot_cannot_use_is_named(parse: Any, field: str, value: dict[str, Any], kind: str) -> None:
    incoming = translate(
        parse(message(**{field: {"file_id": "x", "file_unique_id": "ux", **value}}))
    ).incoming
    assert incoming is not None and incoming.unsupported == kind


def test_a_gif_is_an_animation_not_a_file(parse: Any) -> None:
    gif = {"file_id": "g", "file_unique_id": "ug", "width": 1, "height": 1, "duration": 1}
    doc = {"file_id": "g", "file_unique_id": "ug", "mime_type": "video/mp4"}
    incoming = translate(parse(message(animation=gif, document=doc))).incoming
    assert incoming is not None and incoming.unsupported == "animation"


def test_a_button_press(parse: Any) -> None:
    update = {
        "update_id": 78,
        "callback_query": {
            "id": "cq1",
            "from": {"id": 42, "is_bot": False, "first_name": "Анна", "language_code": "ru"},
            "message": {"message_id": 9, "date": 0, "chat": {"id": 42, "type": "private"}, "text": "Меню"},
            "chat_instance": "ci",
            "data": "menu:new",
        },
    }
    draft = translate(parse(update))
    assert draft.incoming is not None and draft.incoming.button == "menu:new"
    assert (draft.chat_id, draft.callback_id, draft.callback_message_id) == (42, "cq1", 9)


def test_updates_without_user_input_are_skipped(parse: Any) -> None:
    edited = {"update_id": 79, "edited_message": message(text="x")["message"]}
    assert translate(parse(edited)).chat_id is None
    group = message(new_chat_title="Двор")
    group["message"]["chat"] = {"id": -100, "type": "group", "title": "Двор"}
    assert translate(parse(group)).incoming is None


def test_parse_command() -> None:
    assert parse_command("/start") == ("start", "")
    assert parse_command("/staff  ABC-123 ") == ("staff", "ABC-123")
    assert parse_command("/new\nmore") == ("new", "more")
    assert parse_command("/") is None
    assert parse_command("text /start") is None


# --- render -------------------------------------------------------------------------------------------------
def ops(reply: Reply) -> list[Any]:
    return render(reply, location_label="📍", codec=CallbackCodec())


def test_text_is_split_at_4096_utf16_units_on_boundaries() -> None:
    assert split_text("short") == ["short"]
    paragraphs = "\n\n".join([("слово " * 300).strip()] * 5)  # 9,000 characters
    parts = split_text(paragraphs)
    assert len(parts) == 3 and all(utf16_len(p) <= 4096 for p in parts)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in parts)
    emoji = "🙂" * 3000  # two UTF-16 units each: 6,000 units
    parts = split_text(emoji)
    assert [utf16_len(p) for p in parts] == [4096, 6000 - 4096] and "".join(parts) == emoji
    solid = "ж" * 9000
    assert [len(p) for p in split_text(solid)] == [4096, 4096, 808]


def test_buttons_ride_on_the_last_part_and_photos_come_first() -> None:
    reply = Reply(
        text="x " * 3000,
        buttons=((("Да", "yes"), ("Нет", "no")),),
        photos=(Photo(SHA),) * 12,
        location=Location(1.0, 2.0),
    )
    plan = ops(reply)
    assert [type(op) for op in plan] == [SendPhotos, SendPhotos, Location, SendText, SendText]
    assert [len(op.shas) for op in plan[:2]] == [10, 2]
    assert plan[0].caption is None  # the text has its own messages
    assert plan[3].markup is None and plan[4].markup == InlineKeyboard(((("Да", "yes"), ("Нет", "no")),))


def test_short_text_with_photos_becomes_the_caption() -> None:
    assert ops(Reply(text="Готово", photos=(Photo(SHA), Photo(SHA)))) == [SendPhotos((SHA, SHA), "Готово")]
    assert ops(Reply(text="я" * 1025, photos=(Photo(SHA),)))[0] == SendPhotos((SHA,), None)
    assert ops(Reply(text="", photos=(Photo(SHA),))) == [SendPhotos((SHA,), None)]
    assert ops(Reply(text="", buttons=((("OK", "ok"),),)))[0].text == "…"


def test_asking_for_the_location_uses_a_reply_keyboard() -> None:
    [op] = ops(Reply(text="Где?", ask_location=True, buttons=((("Отмена", "report:cancel"),),)))
    assert op.markup == ReplyKeyboard("📍", ((("Отмена", "report:cancel"),),))


def test_long_callback_data_is_mapped_to_a_token() -> None:
    codec = CallbackCodec()
    assert codec.encode("menu:new") == "menu:new"
    long = "staff:reject:12345:" + "причина" * 10
    token = codec.encode(long)
    assert len(token.encode()) <= 64 and codec.decode(token) == long
    assert codec.decode("~unknown") == "~unknown"  # after a restart: reaches the engine as a stale button


# --- pace ---------------------------------------------------------------------------------------------------
def test_pace_allows_a_burst_then_one_per_interval() -> None:
    pace = Pace(rate=1.0, burst=3)
    waits = [pace.reserve(0.0) for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0]
    assert pace.reserve(10.0) == 0.0  # rested: a new burst
    album = Pace(rate=1.0, burst=3)
    assert album.reserve(0.0, cost=5) == 0.0 and album.reserve(0.0) == 3.0  # an album of 5 counts 5


def test_pace_holds_after_a_flood_wait() -> None:
    pace = Pace(rate=30.0, burst=30)
    pace.hold(0.0, 7.0)
    assert pace.reserve(6.0) == pytest.approx(1.0)
    rested = Pace(rate=30.0, burst=30)
    rested.hold(0.0, 7.0)
    assert rested.reserve(7.0) == pytest.approx(0.0)


def test_aiogram_imported_with_deferred_types_leaves_pydantic_as_it_was() -> None:
    """Regression (issue 17): `otklik run` spent 1.8 s and ~110 MiB building all of aiogram's types at import.
    They are built on first use; pydantic's own models made afterwards are built at once, as ever."""
    import pydantic

    from bots.telegram import aiogram_import

    assert "defer_build" not in pydantic.BaseModel.model_config
    assert "model_rebuild" not in pydantic.BaseModel.__dict__ or isinstance(
        pydantic.BaseModel.__dict__["model_rebuild"], classmethod
    )

    class Later(pydantic.BaseModel):
        x: int

    assert Later.__pydantic_complete__
    from aiogram.types import Update

    update = Update.model_validate(
        {
            "update_id": 1,
            "message": {"message_id": 2, "date": 0, "chat": {"id": 3, "type": "private"}, "text": "hi"},
        }
    )
    assert update.message is not None and update.message.text == "hi" and update.message.chat.id == 3
    if aiogram_import.types_namespace() is not None:  # deferred in this process
        assert "Message" in aiogram_import.types_namespace()  # type: ignore[operator]
