"""User-facing text catalogues (ru default, en), keyed like `report.location.ask` (DESIGN.md §4).

The catalogues are TOML files next to this module so translators edit text, not code. They are read on first
use, not at import time.

A text where a number meets a noun is a *plural table*, `key = { one = "…", few = "…", many = "…",
other = "…" }`, and the form is chosen by the `count` parameter with the language's CLDR plural rule
(«1 символ», «2 символа», «5 символов»; "1 character", "2 characters"). Dates are written from the
catalogue's `format.*` patterns, so each language gets the form its readers expect (04.12.2026, 4 Dec 2026).
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
PLURAL_FORMS = frozenset({"zero", "one", "two", "few", "many", "other"})
DATE_FIELDS = frozenset({"day", "month", "month_name", "year", "hour", "minute"})
"""What a `format.*` pattern may use; the languages pick different ones (04.12 vs 4 Dec)."""

Text = str | dict[str, str]


def plural_category(language: str, count: int) -> str:
    """The CLDR plural category of a whole number (unicode.org/cldr, plurals.xml: ru and en integers)."""
    n = abs(count)
    if language == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if n == 1 else "other"


def is_plural(value: object) -> bool:
    return isinstance(value, dict) and "other" in value and set(value) <= PLURAL_FORMS


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, Text]) -> None:
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if is_plural(value):
            out[name] = {form: str(text) for form, text in value.items()}
        elif isinstance(value, dict):
            _flatten(name, value, out)
        else:
            out[name] = str(value)


@cache
def catalogue(language: str) -> dict[str, Text]:
    text = resources.files("core.locales").joinpath(f"{language}.toml").read_text("utf-8")
    out: dict[str, Text] = {}
    _flatten("", tomllib.loads(text), out)
    return out


def forms(value: Text) -> list[str]:
    """Every text a catalogue entry can give (one for a plain text, each form of a plural table)."""
    return list(value.values()) if isinstance(value, dict) else [value]


def normalise_language(code: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Platform language codes (`en-GB`, `ru`, VK's numeric ids mapped by the adapter) → one we speak."""
    if not code:
        return default
    base = code.lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else default


def t(language: str, key: str, **params: Any) -> str:
    """The text for `key`; falls back to Russian, then to the key itself, so a missing text never crashes.
    A plural table takes the form for `params["count"]`."""
    if key in catalogue(language):
        found: Text = catalogue(language)[key]
    else:
        language, found = DEFAULT_LANGUAGE, catalogue(DEFAULT_LANGUAGE).get(key) or key
    if isinstance(found, dict):
        category = plural_category(language, int(params.get("count", 0)))
        found = found.get(category) or found["other"]
    return found.format(**params) if params else found


def date(language: str, moment: datetime | None, kind: str = "date") -> str:
    """A local moment written the language's way; `kind` is `date`, `datetime` or `day` (no year)."""
    if moment is None:
        return "—"
    months = t(language, "format.months").split()
    return t(
        language,
        f"format.{kind}",
        day=moment.day,
        month=moment.month,
        month_name=months[moment.month - 1],
        year=moment.year,
        hour=moment.hour,
        minute=moment.minute,
    )
