"""The settings as the admin commands read them: the same variables and `.env`, without importing pydantic.

pydantic and pydantic-settings cost an admin command (`otklik tickets list`, ~0.3 s budget, issue 17) about a
fifth of its start-up. `read()` collects the values exactly as `bots.settings.Settings` does (the environment,
names in any case, over `.env` in the directory the command starts in; empty means not set) and converts those
whose meaning is beyond doubt — a plain decimal number within the field's bounds, a listed choice, a path, a
string — with the same checks `Settings` runs (the functions below are its validators). Any other value (a
number out of bounds, `1e3`, `Yes`, a bad URL) returns None, and the caller validates with `Settings` itself:
every message about a wrong setting still comes from pydantic. tests/test_env_settings.py pins the fields, the
defaults and the conversions to `Settings`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from bots.settings import Settings

ENV_FILE = ".env"
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?")


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/otklik` (`~/.local/share/otklik`): the same folder whichever directory a command is
    run from, so `otklik tickets list` never opens a fresh empty database by accident."""
    base = os.environ.get("XDG_DATA_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "otklik"


# --- the checks of `Settings`' validators (a ValueError's text is what the operator reads) ---


def known_database(value: str) -> str:
    value = value.strip()
    if not value:
        return value
    try:
        backend = make_url(value).get_backend_name()
    except ArgumentError:
        raise ValueError("not a database URL; expected postgresql://user:password@host:5432/db") from None
    if backend not in DATABASE_SCHEMES:
        raise ValueError(
            f"unsupported database {backend!r}; use postgresql://user:password@host:5432/db, "
            "or leave it empty for SQLite in DATA_DIR"
        )
    return value


def known_photo_store(value: str) -> str:
    value = value.strip()
    if value and not (value.startswith("s3://") and len(value) > len("s3://")):
        raise ValueError("expected s3://bucket/prefix, or empty for DATA_DIR/photos")
    return value


def absolute_data_dir(value: Path) -> Path:
    """A relative DATA_DIR is taken from the directory the command starts in, once, and shown whole."""
    return value.expanduser().absolute()


def photo_prefix(value: str) -> str:
    """A prefix partners will follow: an http(s) address, or nothing."""
    value = value.strip()
    if value and not value.startswith(("https://", "http://")):
        raise ValueError("expected an http(s) address prefix, e.g. https://city.example.org/photos/")
    return value


def web_origins(value: str) -> str:
    """Each entry an origin as browsers send it (`https://city.ru`, `http://localhost:8000`) or `self`: the
    list goes into CORS and Content-Security-Policy headers, so nothing else may pass."""
    for entry in (e.strip() for e in value.split(",")):
        if entry and entry != "self" and not _ORIGIN.fullmatch(entry.rstrip("/")):
            raise ValueError(f"{entry!r} is not an origin like https://city.ru (or self)")
    return value.strip()


class Derived:
    """What both kinds of settings work out from their fields (mixed into `Settings` and `QuickSettings`)."""

    if TYPE_CHECKING:
        database_url: str
        data_dir: Path
        web_base_url: str
        webhook_base_url: str
        http_host: str
        http_port: int
        widget_origins: str

    @property
    def effective_database_url(self) -> str:
        """Empty DATABASE_URL means the embedded SQLite file under DATA_DIR."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'otklik.sqlite3').resolve()}"

    @property
    def web_url(self) -> str:
        """The base of links to the city's web."""
        base = self.web_base_url or self.webhook_base_url or f"http://{self.http_host}:{self.http_port}"
        return base.rstrip("/")

    @property
    def map_page_url(self) -> str:
        """The widget's map page the bots offer in the place step; empty when the widget is off (the page is
        served only then)."""
        return self.web_url + "/widget/map" if self.widget_origins.strip() else ""

    @property
    def is_embedded(self) -> bool:
        return not self.database_url or self.database_url.startswith("sqlite")

    @property
    def shown_database_url(self) -> str:
        """The database URL with its password masked, fit for a log or a terminal."""
        return make_url(self.effective_database_url).render_as_string(hide_password=True)


# --- conversions beyond doubt; anything else is pydantic's to judge ---


class Unsure(Exception):
    """A value `Settings` must validate (and word the error for)."""


class Secret:
    """pydantic's `SecretStr` as the commands use it: shown masked, read with get_secret_value()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __repr__(self) -> str:
        return f"SecretStr({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)


Convert = Callable[[str], Any]
_INTEGER = re.compile(r"0|[1-9][0-9]{0,17}")
_NUMBER = re.compile(r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,6})?")
_BOOLEANS = {"true": True, "on": True, "yes": True, "1": True}
_BOOLEANS |= {"false": False, "off": False, "no": False, "0": False}


def text(value: str) -> str:
    return value


def secret(value: str) -> Secret:
    return Secret(value)


def path(value: str) -> Path:
    return Path(value)


def data_dir(value: str) -> Path:
    return absolute_data_dir(Path(value))


def boolean(value: str) -> bool:
    if value not in _BOOLEANS:
        raise Unsure(value)
    return _BOOLEANS[value]


def choice(*options: str) -> Convert:
    def convert(value: str) -> str:
        if value not in options:
            raise Unsure(value)
        return value

    return convert


def _bounded(
    pattern: re.Pattern[str], kind: Callable[[str], float], low: float | None, high: float | None
) -> Convert:
    def convert(value: str) -> float:
        if not pattern.fullmatch(value):
            raise Unsure(value)
        number = kind(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise Unsure(value)
        return number

    return convert


def integer(low: int | None = None, high: int | None = None) -> Convert:
    return _bounded(_INTEGER, int, low, high)


def number(low: float | None = None, high: float | None = None) -> Convert:
    return _bounded(_NUMBER, float, low, high)


def checked(check: Callable[[str], str]) -> Convert:
    def convert(value: str) -> str:
        try:
            return check(value)
        except ValueError:
            raise Unsure(value) from None

    return convert


FIELDS: dict[str, tuple[Convert, Any]] = {
    "database_url": (checked(known_database), ""),
    "database_pool_size": (integer(1, 200), 8),
    "database_statement_timeout": (number(0, 86_400), 0.0),
    "data_dir": (data_dir, None),  # default_data_dir()
    "municipality_config": (path, None),
    "default_language": (choice("ru", "en"), "ru"),
    "telegram_bot_token": (secret, None),
    "telegram_api_url": (text, "https://api.telegram.org"),
    "telegram_library": (choice("aiogram", "ptb"), "aiogram"),
    "telegram_rate": (number(1, 10_000), 30.0),
    "vk_group_token": (secret, None),
    "vk_group_id": (integer(), None),
    "vk_api_url": (text, "https://api.vk.ru/method"),
    "vk_confirmation_code": (text, ""),
    "vk_rate": (integer(1, 1_000), 20),
    "webhook_base_url": (text, ""),
    "webhook_secret": (secret, None),
    "http_host": (text, "127.0.0.1"),
    "http_port": (integer(0, 65535), 8080),
    "http_max_body_bytes": (integer(1024 * 1024), 24 * 1024 * 1024),
    "geocoder": (choice("nominatim", "yandex", "off"), "nominatim"),
    "nominatim_url": (text, "https://nominatim.openstreetmap.org"),
    "yandex_geocoder_key": (secret, None),
    "photo_gc_hours": (number(0), 24.0),
    "processed_events_days": (integer(1), 7),
    "consent_required": (boolean, True),
    "retention_days": (integer(0), 3 * 365),
    "open311_jurisdiction_id": (text, ""),
    "open311_rate_per_minute": (integer(1, 100_000), 60),
    "open311_photo_url": (checked(photo_prefix), ""),
    "open311_contact": (text, ""),
    "widget_origins": (checked(web_origins), ""),
    "widget_secret": (secret, None),
    "widget_rate_per_minute": (integer(1), 30),
    "widget_tiles_url": (text, TILES),
    "vk_app_secret": (secret, None),
    "vk_app_id": (integer(1), None),
    "web_base_url": (text, ""),
    "map_tile_url": (text, TILES),
    "map_tile_attribution": (text, "© OpenStreetMap contributors"),
    "public_map": (boolean, False),
    "web_session_secret": (secret, None),
    "photo_store": (checked(known_photo_store), ""),
    "s3_endpoint_url": (text, ""),
    "s3_access_key_id": (text, ""),
    "s3_secret_access_key": (secret, None),
    "s3_region": (text, ""),
}
"""Every field of `Settings`, in its order: how a value beyond doubt converts, and the default as `Settings`
has it (pydantic-settings validates defaults too)."""


class QuickSettings(Derived):
    """The settings' fields as attributes, and `model_fields_set` (the fields given), like `Settings`."""

    def __init__(self, given: Mapping[str, Any]) -> None:
        for name, (_, default) in FIELDS.items():
            setattr(self, name, given.get(name, default))
        if "data_dir" not in given:
            self.data_dir = absolute_data_dir(default_data_dir())
        self.model_fields_set = set(given)


def given_values(environ: Mapping[str, str], env_file: str | None = ENV_FILE) -> dict[str, str]:
    """The raw values, as pydantic-settings collects them: names in any case, empty values dropped, the
    environment over the file."""
    given: dict[str, str] = {}
    if env_file is not None:
        file = Path(env_file).expanduser()
        if file.is_file() or file.is_fifo():
            from dotenv import dotenv_values  # what pydantic-settings reads .env with

            for key, value in dotenv_values(file, encoding="utf-8").items():
                if value:
                    given[key.lower()] = value
    given.update({key.lower(): value for key, value in environ.items() if value != ""})
    return given


def read(environ: Mapping[str, str] = os.environ, env_file: str | None = ENV_FILE) -> Settings | None:
    """The settings, or None when some value is for `Settings` to judge."""
    try:
        raw = given_values(environ, env_file)
    except Exception:  # an unreadable .env: pydantic-settings says so
        return None
    given = {}
    try:
        for name, (convert, _) in FIELDS.items():
            if name in raw:
                given[name] = convert(raw[name])
    except Unsure:
        return None
    return cast("Settings", QuickSettings(given))
