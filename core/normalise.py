"""Text from users made safe to store and forward: one normal form, no invisible or control characters.

A description with NUL, a bidi override (U+202E) or zero-width characters was stored and sent to staff
verbatim: a NUL can make the platform refuse the staff card (dead letters), an override makes a card read
backwards, and zero-width characters hide text. The engine applies this once to every `Incoming`, so every
channel gets it; what becomes empty is then handled as an empty message.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from core.messages import Incoming

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
"""Bidi marks, embeddings, overrides and isolates."""
_INVISIBLE = "\u200b\u200c\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"
"""Zero-width space and non-joiner, word joiner, invisible operators, BOM, soft hyphen."""
_REMOVED = re.compile(f"[{_BIDI}{_INVISIBLE}\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 and C1 controls except tab and newline, DEL, lone surrogates (cannot be encoded), and the above."""
_NEWLINES = re.compile("\r\n?|[\x85\u2028\u2029]")
_STRAY_ZWJ = re.compile(r"(?<![\u2600-\u27bf\ufe0f\U0001f000-\U0001faff])\u200d|\u200d(?!\S)")
"""A zero-width joiner that does not join a pictograph (or its variation selector) to what follows."""


def normalise_text(text: str) -> str:
    """NFC; line breaks as "\\n"; tab as a space; control, bidi and zero-width characters removed.
    A zero-width joiner is kept only inside an emoji sequence (a family, a flag), where it is part of the
    picture."""
    text = _NEWLINES.sub("\n", text).replace("\t", " ")
    text = _REMOVED.sub("", text)
    text = _STRAY_ZWJ.sub("", text)
    return unicodedata.normalize("NFC", text)


def normalise_incoming(incoming: Incoming) -> Incoming:
    """The same input with every free-text field normalised (button data is parsed strictly, not cleaned)."""
    changes: dict[str, str] = {}
    for name in ("text", "command", "args", "display_name", "contact"):
        value = getattr(incoming, name)
        if value:
            cleaned = normalise_text(value)
            if cleaned != value:
                changes[name] = cleaned
    return replace(incoming, **changes) if changes else incoming  # type: ignore[arg-type]
