"""Operator settings from the environment and `.env` (DESIGN.md §8: these names are public interface)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/otklik` (`~/.local/share/otklik`): the same folder whichever directory a command is
    run from, so `otklik tickets list` never opens a fresh empty database by accident."""
    base = os.environ.get("XDG_DATA_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "otklik"


class Settings(BaseSettings):
    # An empty value (`VK_GROUP_ID=` as `.env.example` has it) means "not set": the default applies.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    database_url: str = ""
    data_dir: Path = Field(default_factory=default_data_dir)
    municipality_config: Path | None = None
    default_language: Literal["ru", "en"] = "ru"

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_library: Literal["aiogram", "ptb"] = "aiogram"

    vk_group_token: SecretStr | None = None
    vk_group_id: int | None = None
    vk_api_url: str = "https://api.vk.ru/method"
    vk_confirmation_code: str = ""

    webhook_base_url: str = ""
    webhook_secret: SecretStr | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    """The dashboard, health checks, webhooks, Open311 and the widget share this one server; 0 picks a free
    port (tests)."""
    http_max_body_bytes: int = Field(default=24 * 1024 * 1024, ge=1024 * 1024)

    geocoder: Literal["nominatim", "yandex", "off"] = "nominatim"
    nominatim_url: str = "https://nominatim.openstreetmap.org"
    yandex_geocoder_key: SecretStr | None = None

    photo_gc_hours: float = Field(default=24.0, ge=0)
    """Photos nothing refers to (sent where no step takes them, of cancelled drafts) are removed this long
    after their latest upload."""
    processed_events_days: int = Field(default=7, ge=1)
    """How long delivery ids are kept for dedupe: far past Telegram's and VK's redelivery windows."""

    photo_store: str = ""
    """Where photos live: empty for DATA_DIR/photos (one host), or `s3://bucket/prefix` for an S3-compatible
    object store that several workers on several hosts share (DATA_DIR/photos is then this host's cache)."""
    s3_endpoint_url: str = ""
    """The object store's URL (https://storage.yandexcloud.net, http://minio:9000); empty for AWS."""
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = ""

    @field_validator("photo_store")
    @classmethod
    def _known_photo_store(cls, value: str) -> str:
        value = value.strip()
        if value and not (value.startswith("s3://") and len(value) > len("s3://")):
            raise ValueError("expected s3://bucket/prefix, or empty for DATA_DIR/photos")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        """A relative DATA_DIR is taken from the directory the command starts in, once, and shown whole."""
        return value.expanduser().absolute()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
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

    @property
    def effective_database_url(self) -> str:
        """Empty DATABASE_URL means the embedded SQLite file under DATA_DIR."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'otklik.sqlite3').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return not self.database_url or self.database_url.startswith("sqlite")

    @property
    def shown_database_url(self) -> str:
        """The database URL with its password masked, fit for a log or a terminal."""
        return make_url(self.effective_database_url).render_as_string(hide_password=True)


def describe_errors(error: ValidationError) -> list[str]:
    """One line per wrong setting, named as the operator writes it (`VK_GROUP_ID`), never echoing secrets."""
    lines = []
    for item in error.errors(include_url=False):
        name = "_".join(str(part) for part in item["loc"]).upper() or "settings"
        message = item["msg"].removeprefix("Value error, ")
        secret = name == "DATABASE_URL" or any(word in name for word in ("TOKEN", "SECRET", "KEY"))
        given = "" if secret or "input" not in item else f" (got {str(item['input'])[:60]!r})"
        lines.append(f"{name}: {message}{given}")
    return lines
