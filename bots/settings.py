"""Operator settings from the environment and `.env` (DESIGN.md §8: these names are public interface)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = ""
    data_dir: Path = Path("data")
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
    http_port: int = 8080

    geocoder: Literal["nominatim", "yandex", "off"] = "nominatim"
    nominatim_url: str = "https://nominatim.openstreetmap.org"
    yandex_geocoder_key: SecretStr | None = None

    photo_gc_hours: float = Field(default=24.0, ge=0)
    """Photos nothing refers to (sent where no step takes them, of cancelled drafts) are removed this long
    after their latest upload."""
    processed_events_days: int = Field(default=7, ge=1)
    """How long delivery ids are kept for dedupe: far past Telegram's and VK's redelivery windows."""

    @property
    def effective_database_url(self) -> str:
        """Empty DATABASE_URL means the embedded SQLite file under DATA_DIR."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'otklik.sqlite3').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return not self.database_url or self.database_url.startswith("sqlite")
