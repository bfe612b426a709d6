"""User-facing text catalogues (ru default, en), keyed like `report.location.ask` (DESIGN.md §4).

The catalogues are TOML files next to this module so translators edit text, not code. They are read on first
use, not at import time.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(name, value, out)
        else:
            out[name] = str(value)


@cache
def catalogue(language: str) -> dict[str, str]:
    text = resources.files("core.locales").joinpath(f"{language}.toml").read_text("utf-8")
    out: dict[str, str] = {}
    _flatten("", tomllib.loads(text), out)
    return out


def normalise_language(code: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Platform language codes (`en-GB`, `ru`, VK's numeric ids mapped by the adapter) → one we speak."""
    if not code:
        return default
    base = code.lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else default


def t(language: str, key: str, **params: Any) -> str:
    """The text for `key`; falls back to Russian, then to the key itself, so a missing text never crashes."""
    text = catalogue(language).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**params) if params else text
