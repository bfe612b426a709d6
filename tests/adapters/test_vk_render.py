"""Reply → messages.send: VK's keyboard limits, labels, payloads, long texts, photos and places."""

from __future__ import annotations

import json

import pytest

from bots.vk.render import CURRENT_CLIENT, INLINE, MiniApp, fit_rows, keyboard_json, label, render, split_text
from bots.vk.sender import outbox_random_id, reply_random_id
from bots.vk.translate import ClientCaps
from core.messages import Location, Photo, Reply
from tests.fakes.vk_api import ApiError, check_keyboard


def _keyboard(reply: Reply, caps: ClientCaps = CURRENT_CLIENT) -> dict:
    raw = keyboard_json(reply, caps)
    assert raw is not None
    keyboard = json.loads(raw)
    check_keyboard(keyboard)  # what the fake VK (and VK) accept
    return keyboard


def _rows(n: int, per_row: int = 1) -> tuple:
    return tuple(tuple((f"Кнопка {r}.{c}", f"b:{r}.{c}") for c in range(per_row)) for r in range(n))


def test_buttons_become_an_inline_keyboard_of_callback_buttons() -> None:
    keyboard = _keyboard(Reply("?", buttons=(((("Да", "yes"), ("Нет", "no"))),)))
    assert keyboard["inline"] is True
    actions = [b["action"] for row in keyboard["buttons"] for b in row]
    assert [a["type"] for a in actions] == ["callback", "callback"]
    assert [json.loads(a["payload"]) for a in actions] == [{"b": "yes"}, {"b": "no"}]


def test_too_many_rows_are_reflowed_into_an_inline_keyboard() -> None:
    keyboard = _keyboard(Reply("?", buttons=_rows(9)))  # the category menu: 8 categories and *Cancel*
    assert keyboard["inline"] is True
    assert len(keyboard["buttons"]) <= 6
    flat = [json.loads(b["action"]["payload"])["b"] for row in keyboard["buttons"] for b in row]
    assert flat == [f"b:{r}.0" for r in range(9)]  # order kept


def test_more_than_ten_buttons_become_a_one_time_keyboard_of_text_buttons() -> None:
    keyboard = _keyboard(Reply("?", buttons=_rows(14)))
    assert keyboard["inline"] is False and keyboard["one_time"] is True
    actions = [b["action"] for row in keyboard["buttons"] for b in row]
    assert len(actions) == 14 and {a["type"] for a in actions} == {"text"}


def test_more_than_forty_buttons_are_cut_to_what_vk_shows() -> None:
    keyboard = _keyboard(Reply("?", buttons=_rows(45)))
    assert sum(len(row) for row in keyboard["buttons"]) == 40


def test_wide_rows_are_split() -> None:
    assert fit_rows(_rows(1, per_row=7), INLINE) == [
        [(f"Кнопка 0.{c}", f"b:0.{c}") for c in range(7)][i : i + 2] for i in range(0, 7, 2)
    ]
    keyboard = _keyboard(Reply("?", buttons=_rows(1, per_row=7)))
    assert all(len(row) <= 5 for row in keyboard["buttons"])


def test_location_button_has_a_row_of_its_own() -> None:
    keyboard = _keyboard(Reply("Где?", ask_location=True, buttons=((("Отменить", "report:cancel"),),)))
    assert keyboard["buttons"][-1] == [{"action": {"type": "location"}}]
    assert keyboard["buttons"][0][0]["action"]["type"] == "callback"


def test_old_clients_get_text_buttons_or_typed_labels() -> None:
    no_callbacks = ClientCaps(callback=False)
    keyboard = _keyboard(Reply("?", buttons=((("Да", "yes"),),)), no_callbacks)
    assert keyboard["buttons"][0][0]["action"]["type"] == "text"
    no_inline = ClientCaps(inline_keyboard=False)
    keyboard = _keyboard(Reply("?", buttons=((("Да", "yes"),),)), no_inline)
    assert keyboard["inline"] is False
    [message] = render(Reply("Выберите:", buttons=((("Да", "yes"),),)), ClientCaps(keyboard=False))
    assert message.keyboard is None and "• Да" in message.text


def test_labels_are_cut_to_forty_characters() -> None:
    long = "Очень длинное название категории, которое не помещается"
    assert len(label(long)) == 40 and label(long).endswith("…")
    assert label("  Два   пробела ") == "Два пробела"
    _keyboard(Reply("?", buttons=(((long, "x"),),)))


def test_a_payload_over_255_bytes_is_dropped_not_sent() -> None:
    reply = Reply("?", buttons=((("ok", "ok"), ("huge", "я" * 200)),))
    keyboard = _keyboard(reply)
    assert [b["action"]["label"] for row in keyboard["buttons"] for b in row] == ["ok"]


@pytest.mark.parametrize("size", [4096, 4097, 10_000, 20_000])
def test_long_text_is_split_at_line_or_word_boundaries(size: int) -> None:
    text = ("Строка текста номер такая-то.\n" * (size // 30 + 1))[:size]
    parts = split_text(text)
    assert all(0 < len(p) <= 4096 for p in parts)
    assert "".join(p.replace("\n", "") for p in parts) == text.replace("\n", "")
    assert (len(parts) == 1) == (size <= 4096)


def test_text_without_spaces_is_cut_hard() -> None:
    parts = split_text("я" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_keyboard_photos_and_place_go_with_the_last_part() -> None:
    photos = tuple(Photo(f"{i:064x}") for i in range(12))
    reply = Reply("я " * 3000, buttons=((("ok", "ok"),),), photos=photos, location=Location(52.28, 104.28))
    messages = render(reply)
    assert [len(m.photos) for m in messages] == [0, 10, 2]
    assert messages[1].lat == 52.28 and messages[1].long == 104.28
    assert [m.keyboard is not None for m in messages] == [False, False, True]
    assert all(len(m.text) <= 4096 for m in messages)


def test_empty_reply_sends_nothing() -> None:
    assert render(Reply("")) == []
    assert render(Reply("   ", buttons=((("ok", "ok"),),))) == []


def test_random_ids_are_stable_and_apart() -> None:
    assert outbox_random_id(7, 0) == outbox_random_id(7, 0) != outbox_random_id(7, 1)
    assert outbox_random_id(7, 63) != outbox_random_id(8, 0)
    assert all(outbox_random_id(i, 0) < 0 for i in range(1000))
    assert reply_random_id("evt", 0) == reply_random_id("evt", 0) != reply_random_id("evt", 1)
    assert all(0 < reply_random_id(f"e{i}", 0) < 2**31 for i in range(1000))


def test_the_fake_refuses_what_vk_refuses() -> None:
    with pytest.raises(ApiError):
        check_keyboard({"inline": True, "buttons": [[{"action": {"type": "text", "label": "x"}}]] * 7})
    with pytest.raises(ApiError):
        check_keyboard({"buttons": [[{"action": {"type": "text", "label": "x" * 41}}]]})


def test_a_document_is_sent_as_text_messages_after_the_reply() -> None:
    """VK degrades the /mydata export to its text (never dropped), split at the message limit."""
    from core.messages import Document

    content = ('{"tickets": [' + ",".join(['{"description": "' + "я" * 90 + '"}'] * 60) + "]}").encode()
    messages = render(Reply(text="Что хранится о вас", document=Document("otklik-my-data.json", content)))
    assert messages[0].text == "Что хранится о вас"
    rest = "".join(m.text for m in messages[1:])
    assert len(messages) > 2 and rest.startswith("📎 otklik-my-data.json")
    assert rest.replace("\n", "").endswith("]}") and all(len(m.text) <= 4096 for m in messages)


def test_the_map_mini_app_gets_a_row_of_its_own_under_the_location_button() -> None:
    app = MiniApp(51234, -77)
    reply = Reply("Where?", ask_location=True, buttons=_rows(8), language="en")  # a full inline keyboard
    raw = keyboard_json(reply, CURRENT_CLIENT, app)
    assert raw is not None
    keyboard = json.loads(raw)
    check_keyboard(keyboard)  # two wide rows reserved: still within the inline limits
    assert keyboard["buttons"][-2:] == [
        [{"action": {"type": "location"}}],
        [{"action": {"type": "open_app", "app_id": 51234, "owner_id": -77, "label": "🗺 Pick on the map"}}],
    ]
    # no community id known: no owner_id rather than a wrong one
    raw = keyboard_json(reply, CURRENT_CLIENT, MiniApp(51234))
    assert raw is not None and "owner_id" not in json.loads(raw)["buttons"][-1][0]["action"]
    # a client that cannot open apps, or a reply that asks for no place: no button
    no_apps = ClientCaps.of({"button_actions": ["text", "callback", "location"]})
    assert "open_app" not in (keyboard_json(reply, no_apps, app) or "")
    assert "open_app" not in (keyboard_json(Reply("?", buttons=_rows(2)), CURRENT_CLIENT, app) or "")
