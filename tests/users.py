"""One user helper for every channel: a person talking to the bot, checked by catalogue key.

`User` holds what is the same everywhere: the names of the actions a test takes (`say`, `command`, `pin`,
`photos`, `press`), the buttons of the last messages and the one `expect`. A channel's subclass only
translates: the engine's `Resident` (tests/support.py) calls the engine; `TelegramUser`
(tests/fakes/telegram_api.py) and `VkUser` (tests/fakes/vk_api.py) build the updates those platforms send and
read what the bot sent to their fakes.

Messages reach a user in one of two ways, and `receive` hides which: the engine and Telegram answer within
the action (an action returns once the bot has handled it, so `replies` holds the answer), while a VK user
reads messages as they arrive (long poll hands events over without saying when they are handled). `expect`
therefore always waits for as many messages as it names, then checks them.
"""

from __future__ import annotations

import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Generator, Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from core.texts import catalogue, forms

M = TypeVar("M")
T = TypeVar("T")


@cache
def _pattern(language: str, key: str) -> re.Pattern[str]:
    patterns = []
    for template in forms(catalogue(language)[key]):  # a plural table: any of its forms
        parts = re.split(r"\{[^}]*\}", template)
        patterns.append(".*?".join(re.escape(p) for p in parts))
    return re.compile("(?s)(?:" + "|".join(patterns) + ")")


def text_matches(text: str, key: str, language: str = "ru") -> bool:
    """The text was made from catalogue `key` (with any parameters)."""
    return bool(_pattern(language, key).fullmatch(text))


def assert_texts(texts: Sequence[str], keys: Sequence[str], languages: Sequence[str] = ("ru",)) -> None:
    """The one check behind `User.expect`: these messages are exactly these catalogue keys, in order, each in
    one of `languages`."""
    assert len(texts) == len(keys), f"expected {tuple(keys)}, got {[text[:80] for text in texts]}"
    for text, key in zip(texts, keys, strict=True):
        assert any(text_matches(text, key, lang) for lang in languages), (
            f"expected {key!r}, got {text[:200]!r}"
        )


class User(ABC, Generic[M]):
    """A person in a private chat with the bot on some channel; `replies` are the messages (of the channel's
    own type `M`) they read last."""

    language: str | None
    """The user's language as their client reports it; None when it does not say (texts are Russian then)."""
    replies: list[M]
    languages: tuple[str, ...] = ()
    """The languages `expect` accepts a text in; the user's own unless a channel says otherwise."""

    # --- what a channel translates -------------------------------------------------------------------------
    @abstractmethod
    async def say(self, text: str) -> Any:
        """Write a text message."""

    @abstractmethod
    async def command(self, name: str, args: str = "") -> Any:
        """Send `/name args`."""

    @abstractmethod
    async def pin(self, lat: float, lon: float) -> Any:
        """Share a location."""

    @abstractmethod
    async def tap(self, message: M, data: str) -> Any:
        """Press the button with this data on this message."""

    @abstractmethod
    def text_of(self, message: M) -> str | None:
        """The text of a message, None when it is not a text (a photo, a place, a sticker)."""

    @abstractmethod
    def buttons_of(self, message: M) -> list[tuple[str, str]]:
        """A message's buttons that send data back, as (label, data)."""

    # --- what a channel may change -------------------------------------------------------------------------
    def pressable(self) -> list[M]:
        """The messages whose buttons can be pressed, searched in this order: by default the last replies."""
        return self.replies

    async def receive(self, count: int, timeout: float = 5.0) -> list[M]:
        """The messages to check next: by default the answer to the last action, which has arrived when the
        action returns. A channel whose messages arrive later waits here for `count` of them."""
        del count, timeout
        return self.replies

    # --- the same everywhere -------------------------------------------------------------------------------
    def texts(self) -> list[str]:
        """The texts of the messages read last."""
        return [text for m in self.replies if (text := self.text_of(m)) is not None]

    def buttons(self) -> list[tuple[str, str]]:
        """(label, data) of every button of the messages read last."""
        return [button for m in self.replies for button in self.buttons_of(m)]

    def button_data(self) -> list[str]:
        return [data for _label, data in self.buttons()]

    def find_button(self, data_or_label: str) -> tuple[M, str]:
        """The message with a button of this data or label, and the button's data (a typo fails loudly)."""
        for message in self.pressable():
            for label, data in self.buttons_of(message):
                if data_or_label in (label, data):
                    return message, data
        raise AssertionError(f"no button {data_or_label!r} among {self.buttons()}")

    async def press(self, data_or_label: str) -> Any:
        """Press a button of the messages read, by its data or its label."""
        return await self.tap(*self.find_button(data_or_label))

    def expect(self, *keys: str, timeout: float = 5.0) -> Checked[list[M]]:
        """The next text messages to this user are exactly these catalogue keys, in order (to await)."""
        return Checked(self._expect(keys, timeout), f"expect{keys}")

    async def _expect(self, keys: tuple[str, ...], timeout: float) -> list[M]:
        messages = await self.receive(len(keys), timeout)
        texts = [text for m in messages if (text := self.text_of(m)) is not None]
        assert_texts(texts, keys, self.languages or (self.language or "ru",))
        return messages


class Checked(Generic[T]):
    """A check to await. A check called without `await` would never run and the test pass anyway, with only
    a warning; so each one is listed until awaited, and tests/conftest.py fails a test that leaves one."""

    def __init__(self, check: Coroutine[Any, Any, T], what: str) -> None:
        self.check = check
        self.what = what
        frame = sys._getframe(2)
        self.where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        UNAWAITED.append(self)

    def __await__(self) -> Generator[Any, None, T]:
        UNAWAITED.remove(self)
        return self.check.__await__()


UNAWAITED: list[Checked[Any]] = []


def unawaited_checks() -> list[str]:
    """The checks made but not awaited since the last call (closed: they will never run)."""
    left = [f"{checked.where}: {checked.what}" for checked in UNAWAITED]
    for checked in UNAWAITED:
        checked.check.close()
    UNAWAITED.clear()
    return left
