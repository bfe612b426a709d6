"""Operator settings from the environment and `.env` (DESIGN.md §8: these names are public interface)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bots.env_settings import (
    DATABASE_SCHEMES,
    Derived,
    absolute_data_dir,
    default_data_dir,
    known_database,
    known_photo_store,
    photo_prefix,
    web_origins,
)

__all__ = ["DATABASE_SCHEMES", "Settings", "default_data_dir", "describe_errors"]


class Settings(Derived, BaseSettings):
    """Read by `otklik run` and the tests; the admin commands read the same with bots/env_settings.py."""

    # An empty value (`VK_GROUP_ID=` as `.env.example` has it) means "not set": the default applies.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    database_url: str = ""
    database_pool_size: int = Field(default=8, ge=1, le=200)
    """PostgreSQL connections (and database threads) per worker; a worker holds one more while it leads or
    stands by. Size the server's `max_connections` for workers × (pool + 2)."""
    database_statement_timeout: float = Field(default=0, ge=0, le=86_400)
    """Seconds a PostgreSQL statement may run before the server cancels it (`statement_timeout`); 0: no
    limit. Ignored on SQLite."""
    data_dir: Path = Field(default_factory=default_data_dir)
    municipality_config: Path | None = None
    default_language: Literal["ru", "en"] = "ru"

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_library: Literal["aiogram", "ptb"] = "aiogram"
    telegram_rate: float = Field(default=30.0, ge=1, le=10_000)
    """Messages a second the bot may send in answer to residents, shared by every worker (Telegram allows a
    bot 30; more to bots with paid broadcasts). Notifications from the outbox keep to 30 whatever this
    says."""

    vk_group_token: SecretStr | None = None
    vk_group_id: int | None = None
    vk_api_url: str = "https://api.vk.ru/method"
    vk_confirmation_code: str = ""
    vk_rate: int = Field(default=20, ge=1, le=1_000)
    """API requests a second per community, shared by every worker (VK allows a community token 20).
    Notifications from the outbox keep to 20 whatever this says."""

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
    consent_required: bool = True
    """Residents see the personal-data notice and agree before their first report (152-ФЗ); off only for
    scripted tests of other features."""
    retention_days: int = Field(default=3 * 365, ge=0)
    """Tickets closed or rejected this many days ago are anonymised by the timers (their author's identity
    removed, the ticket kept for statistics); 0 keeps them for ever. Also stated in the notice."""

    open311_jurisdiction_id: str = ""
    """The jurisdiction Open311 requests may name (empty: the municipality's code); `jurisdiction_id` is
    optional for clients, and a different one is refused."""
    open311_rate_per_minute: int = Field(default=60, ge=1, le=100_000)
    """Open311 requests a minute per API key made by `otklik open311 keys add` (its `--rate` overrides it),
    and per client address for requests without a key."""
    open311_photo_url: str = ""
    """Where the public reads report photos: `media_url` is this prefix followed by the photo's sha256
    (e.g. the dashboard's public photo route). Empty: report photos are not public, no `media_url`."""
    open311_contact: str = ""
    """The contact line of Open311's discovery document (who runs the API)."""
    widget_origins: str = ""
    """The website chat widget: the sites allowed to embed it (`https://city.ru,https://www.city.ru`; `self`
    for only this server's own `/chat` page). Empty: the widget is off. CORS and the frame rules follow it."""
    widget_secret: SecretStr | None = None
    """Signs residents' widget tokens. Unset: a random one kept in `DATA_DIR/widget-secret` (set it when
    several processes serve the widget)."""
    widget_rate_per_minute: int = Field(default=30, ge=1)
    """Messages (and uploads, each costing three) one widget resident may send per minute, after a burst of as
    many (at least 20)."""
    widget_tiles_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    """Map tiles of the widget's map picker (Leaflet's URL template)."""
    vk_app_secret: SecretStr | None = None
    """The protected key of the VK Mini App that opens the widget's map for VK residents: launch parameters
    signed with it are trusted (the map page as a Telegram Web App needs only TELEGRAM_BOT_TOKEN)."""
    vk_app_id: int | None = Field(default=None, gt=0)
    """That Mini App's id (its URL in VK's settings: `<WEB_BASE_URL>/widget/map?app=vk`): set, with the
    widget on, the VK bot's place step offers an *open app* button to pick the place on the map."""

    web_base_url: str = ""
    """Where people reach the city's web (the base of `/web` sign-in links); empty: WEBHOOK_BASE_URL, else
    http://HTTP_HOST:HTTP_PORT."""
    map_tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    """The web map's tile server (Leaflet's URL template); markers show even when tiles cannot load."""
    map_tile_attribution: str = "© OpenStreetMap contributors"
    public_map: bool = False
    """PUBLIC_MAP=on: anonymous visitors see reports at /map (category, status, address, dates; no resident's
    identity, description or photos, no rejected reports)."""
    web_session_secret: SecretStr | None = None
    """Signs the web's session cookies and CSRF tokens; empty: a random one per process (sessions then end
    when the process restarts)."""

    photo_store: str = ""
    """Where photos live: empty for DATA_DIR/photos (one host), or `s3://bucket/prefix` for an S3-compatible
    object store that several workers on several hosts share (DATA_DIR/photos is then this host's cache)."""
    s3_endpoint_url: str = ""
    """The object store's URL (https://storage.yandexcloud.net, http://minio:9000); empty for AWS."""
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = ""

    # The checks are bots/env_settings.py's, which the admin commands read the settings with.
    @field_validator("photo_store")
    @classmethod
    def _known_photo_store(cls, value: str) -> str:
        return known_photo_store(value)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return absolute_data_dir(value)

    @field_validator("open311_photo_url")
    @classmethod
    def _photo_prefix(cls, value: str) -> str:
        return photo_prefix(value)

    @field_validator("widget_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        return web_origins(value)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        return known_database(value)


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
