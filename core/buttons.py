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

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Final

from core.parsing import parse_id
from core.texts import LANGUAGES

SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class Field:
    """A typed part of a callback: how to read it from the wire (None when it is not acceptable)."""

    name: str
    read: Callable[[str], Any]


def _score(text: str) -> int | None:
    return int(text) if text in ("1", "2", "3", "4", "5") else None


def _code(text: str) -> str | None:
    """A configuration code (category, organisation, reason): checked against the city where it is used."""
    return text if text and text.isascii() and text.isprintable() else None


def _one_of(*values: str) -> Callable[[str], str | None]:
    return lambda text: text if text in values else None


ID: Final = Field("id", parse_id)
INDEX: Final = Field("index", lambda text: parse_id(text, minimum=0))
SCORE: Final = Field("score", _score)
CODE: Final = Field("code", _code)


class ButtonData:
    """One callback format. `WIRE` lists its parts in order: literal strings, then `Field`s that fill the
    dataclass's fields in declaration order."""

    __slots__ = ()
    WIRE: ClassVar[tuple[str | Field, ...]] = ()
    _PREFIX: ClassVar[str] = ""
    _NAMES: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Prepare the builder once per format: buttons are built for every prompt, so this is hot."""
        super().__init_subclass__(**kwargs)
        literals = [part for part in cls.WIRE if isinstance(part, str)]
        cls._NAMES = tuple(inspect.get_annotations(cls))
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


# --- the resident's menu and report dialog ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Menu(ButtonData):
    item: str
    WIRE = ("menu", Field("item", _one_of("new", "mine", "help", "language")))


@dataclass(frozen=True, slots=True)
class Language(ButtonData):
    code: str
    WIRE = ("lang", Field("language", _one_of(*LANGUAGES)))


@dataclass(frozen=True, slots=True)
class MyTicket(ButtonData):
    """A ticket in *My reports*: its details."""

    number: int
    WIRE = ("ticket", ID)


@dataclass(frozen=True, slots=True)
class Cancel(ButtonData):
    """Ends whatever dialog is active (its wire name predates the other dialogs)."""

    WIRE = ("report", "cancel")


@dataclass(frozen=True, slots=True)
class Category(ButtonData):
    code: str
    WIRE = ("cat", CODE)


@dataclass(frozen=True, slots=True)
class Subcategory(ButtonData):
    code: str
    WIRE = ("sub", CODE)


@dataclass(frozen=True, slots=True)
class SubcategoryBack(ButtonData):
    WIRE = ("sub", "back")


@dataclass(frozen=True, slots=True)
class PlaceAnswer(ButtonData):
    """*Yes* / *No* to a place shown, or *keep* what was sent (the point alone, or the text as typed)."""

    answer: str
    WIRE = ("place", Field("answer", _one_of("yes", "no", "keep")))


@dataclass(frozen=True, slots=True)
class PlacePick(ButtonData):
    """One of the geocoder's candidates, by position in the list shown."""

    index: int
    WIRE = ("place", "pick", INDEX)


@dataclass(frozen=True, slots=True)
class NearbySame(ButtonData):
    """*Me too*: the resident's problem is this nearby ticket."""

    number: int
    WIRE = ("nearby", "same", ID)


@dataclass(frozen=True, slots=True)
class NearbyDifferent(ButtonData):
    WIRE = ("nearby", "different")


@dataclass(frozen=True, slots=True)
class PhotosDone(ButtonData):
    WIRE = ("photos", "done")


@dataclass(frozen=True, slots=True)
class ReviewSubmit(ButtonData):
    WIRE = ("review", "submit")


@dataclass(frozen=True, slots=True)
class ReviewEdit(ButtonData):
    part: str
    WIRE = ("review", "edit", Field("part", _one_of("category", "location", "description", "photos")))


# --- staff ticket cards and their dialogs -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StaffQueue(ButtonData):
    WIRE = ("st", "q")


@dataclass(frozen=True, slots=True)
class StaffOpen(ButtonData):
    number: int
    WIRE = ("st", "open", ID)


@dataclass(frozen=True, slots=True)
class StaffTake(ButtonData):
    number: int
    WIRE = ("st", "take", ID)


@dataclass(frozen=True, slots=True)
class StaffComment(ButtonData):
    number: int
    WIRE = ("st", "com", ID)


@dataclass(frozen=True, slots=True)
class StaffResolve(ButtonData):
    number: int
    WIRE = ("st", "res", ID)


@dataclass(frozen=True, slots=True)
class StaffReject(ButtonData):
    number: int
    WIRE = ("st", "rej", ID)


@dataclass(frozen=True, slots=True)
class ResolvePhotosDone(ButtonData):
    WIRE = ("res", "done")


@dataclass(frozen=True, slots=True)
class ResolveNoComment(ButtonData):
    WIRE = ("res", "skip")


@dataclass(frozen=True, slots=True)
class RejectReason(ButtonData):
    reason: str
    WIRE = ("rej", CODE)


# --- the dispatcher -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouteChoices(ButtonData):
    """The list of organisations to route the ticket to."""

    number: int
    WIRE = ("dp", "route", ID)


@dataclass(frozen=True, slots=True)
class RouteTo(ButtonData):
    number: int
    organisation: str
    WIRE = ("dp", "to", ID, CODE)


@dataclass(frozen=True, slots=True)
class SetPlace(ButtonData):
    number: int
    WIRE = ("dp", "place", ID)


@dataclass(frozen=True, slots=True)
class PlaceSave(ButtonData):
    WIRE = ("dpp", "save")


@dataclass(frozen=True, slots=True)
class PlaceAgain(ButtonData):
    WIRE = ("dpp", "again")


# --- the resident's verdict ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rate(ButtonData):
    number: int
    score: int
    WIRE = ("vd", "rate", ID, SCORE)


@dataclass(frozen=True, slots=True)
class NotFixed(ButtonData):
    number: int
    WIRE = ("vd", "nf", ID)


@dataclass(frozen=True, slots=True)
class ReopenPhotosDone(ButtonData):
    WIRE = ("ro", "done")


# --- personal data (core/dialogs/privacy.py) ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConsentAnswer(ButtonData):
    """*I agree* / *I decline* under the personal-data notice."""

    answer: str
    WIRE = ("pd", "consent", Field("answer", _one_of("yes", "no")))


@dataclass(frozen=True, slots=True)
class ForgetAnswer(ButtonData):
    """*Delete my data* / *Keep it* under the `/forget` confirmation."""

    answer: str
    WIRE = ("pd", "forget", Field("answer", _one_of("yes", "no")))


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
