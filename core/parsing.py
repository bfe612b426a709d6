"""Strict, bounded parsing of numbers that come from users and platforms: button data and command arguments.

`str.isdigit()` is true for "²" and "١٢" and `int()` takes any length, so `int(x) if x.isdigit()` lets one
forged button or `/ticket 99999999999999999999` raise (ValueError, or OverflowError in the database) and
turn a polite "stale button" into a crashed update that the platform redelivers. Every parser asks here.
"""

from __future__ import annotations

MAX_ID = 2**31 - 1
"""Ticket numbers and other ids fit a signed 32-bit integer; anything larger cannot exist."""
_MAX_DIGITS = len(str(MAX_ID))


def parse_id(text: str, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    """The number written in `text` with ASCII digits only (no sign, no spaces), if it lies within
    [minimum, maximum]; otherwise None. Never raises, and never converts more than ten digits."""
    if not text or len(text) > _MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None
