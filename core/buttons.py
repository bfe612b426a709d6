"""The button grammar: every callback-data string the bot puts on a button, as a typed value.

Each format is one frozen dataclass whose `WIRE` spells its parts — literals and typed fields — so the same
declaration builds the string (`Rate(12, 5).data == "vd:rate:12:5"`) and parses it back (`parse`). Dialogs
and the engine match on the values (`case Rate(number, score):`), never on string positions.

The wire strings are public in effect: buttons already sitting in residents' chats must keep working, so a
format never changes once shipped; Telegram allows 64 bytes. Parsing is strict: ids through
`core.parsing.parse_id`, scores exactly one ASCII digit 1–5, no empty or extra parts. Anything else is
`None`, which the engine answers with its one "stale button" reply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Final

from core.parsing import parse_id
from core.texts import LANGUAGES

SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class Field:
    """A typed part of a callback: the value's name and type, and how to read it from the wire (None when
    it is not acceptable)."""

    name: str
    type: type
    read: Callable[[str], Any]


def _score(text: str) -> int | None:
    return int(text) if text in ("1", "2", "3", "4", "5") else None


def _code(text: str) -> str | None:
    return text if text and text.isascii() and text.isprintable() else None


def code(name: str) -> Field:
    """A configuration code (category, organisation, reason): checked against the city where it is used."""
    return Field(name, str, _code)


def one_of(name: str, *values: str) -> Field:
    """A word from a closed list."""
    return Field(name, str, lambda text: text if text in values else None)


NUMBER: Final = Field("number", int, parse_id)
"""A ticket's number."""
INDEX: Final = Field("index", int, lambda text: parse_id(text, minimum=0))
SCORE: Final = Field("score", int, _score)


class _Format(type):
    """Makes each `class X(ButtonData, wire=(...))` a frozen, slotted dataclass whose fields are the wire's
    `Field`s in order, so a format is declared once, in one line, as its wire."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], wire: tuple[str | Field, ...] = ()
    ) -> _Format:
        fields = [part for part in wire if isinstance(part, Field)]
        namespace |= {
            "WIRE": wire,
            "__slots__": tuple(part.name for part in fields),
            "__annotations__": {part.name: part.type for part in fields},
        }
        cls = super().__new__(mcs, name, bases, namespace)
        return dataclass(frozen=True)(cls) if bases else cls


class ButtonData(metaclass=_Format):
    """One callback format. `WIRE` lists its parts in order: literal strings, then `Field`s, which are the
    value's fields in the same order."""

    __slots__ = ()
    WIRE: ClassVar[tuple[str | Field, ...]] = ()
    _PREFIX: ClassVar[str] = ""
    _NAMES: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Prepare the builder once per format: buttons are built for every prompt, so this is hot."""
        super().__init_subclass__(**kwargs)
        literals = [part for part in cls.WIRE if isinstance(part, str)]
        cls._NAMES = tuple(part.name for part in cls.WIRE if isinstance(part, Field))
        cls._PREFIX = SEPARATOR.join(literals) + (SEPARATOR if cls._NAMES else "")

    @property
    def data(self) -> str:
        """The callback string, exactly as shipped (the builder). Literal parts come first (`_literals`)."""
        names = self._NAMES
        if not names:
            return self._PREFIX
        if len(names) == 1:
            return self._PREFIX + str(getattr(self, names[0]))
        return self._PREFIX + SEPARATOR.join([str(getattr(self, name)) for name in names])


_ANSWER: Final = one_of("answer", "yes", "no")


# --- the resident's menu and report dialog ------------------------------------------------------------------
class Menu(ButtonData, wire=("menu", one_of("item", "new", "mine", "help", "language"))): ...


class Language(ButtonData, wire=("lang", one_of("code", *LANGUAGES))): ...


class MyTicket(ButtonData, wire=("ticket", NUMBER)):
    """A ticket in *My reports*: its details."""


class Cancel(ButtonData, wire=("report", "cancel")):
    """Ends whatever dialog is active (its wire name predates the other dialogs)."""


class Category(ButtonData, wire=("cat", code("code"))): ...


class Subcategory(ButtonData, wire=("sub", code("code"))): ...


class SubcategoryBack(ButtonData, wire=("sub", "back")): ...


class PlaceAnswer(ButtonData, wire=("place", one_of("answer", "yes", "no", "keep"))):
    """*Yes* / *No* to a place shown, or *keep* what was sent (the point alone, or the text as typed)."""


class PlacePick(ButtonData, wire=("place", "pick", INDEX)):
    """One of the geocoder's candidates, by position in the list shown."""


class NearbySame(ButtonData, wire=("nearby", "same", NUMBER)):
    """*Me too*: the resident's problem is this nearby ticket."""


class NearbyDifferent(ButtonData, wire=("nearby", "different")): ...


class PhotosDone(ButtonData, wire=("photos", "done")): ...


class ReviewSubmit(ButtonData, wire=("review", "submit")): ...


class ReviewEdit(
    ButtonData, wire=("review", "edit", one_of("part", "category", "location", "description", "photos"))
): ...


# --- staff ticket cards and their dialogs -------------------------------------------------------------------
class StaffQueue(ButtonData, wire=("st", "q")): ...


class StaffOpen(ButtonData, wire=("st", "open", NUMBER)): ...


class StaffTake(ButtonData, wire=("st", "take", NUMBER)): ...


class StaffComment(ButtonData, wire=("st", "com", NUMBER)): ...


class StaffResolve(ButtonData, wire=("st", "res", NUMBER)): ...


class StaffReject(ButtonData, wire=("st", "rej", NUMBER)): ...


class ResolvePhotosDone(ButtonData, wire=("res", "done")): ...


class ResolveNoComment(ButtonData, wire=("res", "skip")): ...


class RejectReason(ButtonData, wire=("rej", code("reason"))): ...


# --- the dispatcher -----------------------------------------------------------------------------------------
class RouteChoices(ButtonData, wire=("dp", "route", NUMBER)):
    """The list of organisations to route the ticket to."""


class RouteTo(ButtonData, wire=("dp", "to", NUMBER, code("organisation"))): ...


class SetPlace(ButtonData, wire=("dp", "place", NUMBER)): ...


class PlaceSave(ButtonData, wire=("dpp", "save")): ...


class PlaceAgain(ButtonData, wire=("dpp", "again")): ...


# --- the resident's verdict ---------------------------------------------------------------------------------
class Rate(ButtonData, wire=("vd", "rate", NUMBER, SCORE)): ...


class NotFixed(ButtonData, wire=("vd", "nf", NUMBER)): ...


class ReopenPhotosDone(ButtonData, wire=("ro", "done")): ...


# --- personal data (core/dialogs/privacy.py) ------------------------------------------------------------
class ConsentAnswer(ButtonData, wire=("pd", "consent", _ANSWER)):
    """*I agree* / *I decline* under the personal-data notice."""


class ForgetAnswer(ButtonData, wire=("pd", "forget", _ANSWER)):
    """*Delete my data* / *Keep it* under the `/forget` confirmation."""


FORMATS: Final[tuple[type[ButtonData], ...]] = (
    Menu, Language, MyTicket, Cancel, Category, Subcategory, SubcategoryBack, PlaceAnswer, PlacePick,
    NearbySame, NearbyDifferent, PhotosDone, ReviewSubmit, ReviewEdit,
    StaffQueue, StaffOpen, StaffTake, StaffComment, StaffResolve, StaffReject, ResolvePhotosDone,
    ResolveNoComment, RejectReason,
    RouteChoices, RouteTo, SetPlace, PlaceSave, PlaceAgain,
    Rate, NotFixed, ReopenPhotosDone,
    ConsentAnswer, ForgetAnswer,
)  # fmt: skip
"""Every callback format the bot ships."""

CANCEL: Final = Cancel().data
"""The cancel button's data, shared by every dialog's prompts."""

CARD_NAMESPACES: Final = frozenset({"st", "dp", "vd"})
"""Buttons on notifications about a ticket (staff cards, the dispatcher's list, the verdict offer): they act
outside the conversation, so a stale one is refused alone, without asking the chat's question again."""


def _literals(cls: type[ButtonData]) -> tuple[str, ...]:
    literals = tuple(part for part in cls.WIRE if isinstance(part, str))
    assert cls.WIRE[: len(literals)] == literals, f"{cls.__name__}: literals come first"
    return literals


_BY_LITERALS: Final[dict[tuple[str, ...], tuple[type[ButtonData], tuple[Callable[[str], Any], ...]]]] = {
    _literals(cls): (cls, tuple(part.read for part in cls.WIRE if isinstance(part, Field))) for cls in FORMATS
}
_LONGEST: Final = max(len(key) for key in _BY_LITERALS)
assert len(_BY_LITERALS) == len(FORMATS), "two formats share their literal parts"


def parse(data: str | None) -> ButtonData | None:
    """The typed value of a callback string, or None when it is none of ours or malformed (the longest
    literal prefix wins: `sub:back` is *Back*, not a subcategory called "back")."""
    if not data or len(data) > 64:
        return None
    return _parse(data)


@lru_cache(maxsize=1024)
def _parse(data: str) -> ButtonData | None:
    """Cached: the same few strings come back all day (menus, categories), and the values are frozen."""
    parts = data.split(SEPARATOR)
    for size in range(min(_LONGEST, len(parts)), 0, -1):
        found = _BY_LITERALS.get(tuple(parts[:size]))
        if found is None:
            continue
        cls, readers = found
        if len(parts) - size != len(readers):
            return None
        values = []
        for read, text in zip(readers, parts[size:], strict=True):
            if (value := read(text)) is None:
                return None
            values.append(value)
        return cls(*values)
    return None


def on_card(data: str) -> bool:
    """Whether a callback string (parseable or not) belongs to a ticket notification's buttons."""
    return data.partition(SEPARATOR)[0] in CARD_NAMESPACES
