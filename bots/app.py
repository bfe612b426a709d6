"""The composition root: the only place that knows settings, storage, core and channels together."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bots.errors import SetupError
from bots.pacing import CallSpacer
from bots.roles import Cluster
from core.demo import DEMO_CONFIG_PATH
from core.municipality import Municipality
from core.ports import Geocoder, LeaderLock, Pace, PollPositions
from storage.database import Database
from storage.leader import leader_lock
from storage.municipality_store import load_municipality, save_municipality
from storage.photo_gc import Collected, collect_unused, remove_files
from storage.photos import PhotoStore
from storage.poll_positions import DbPollPositions
from storage.rate import SharedPace
from storage.revision import is_current

if TYPE_CHECKING:
    from bots.settings import Settings  # pydantic: not for the admin commands (bots/env_settings.py)
    from core.engine import Engine

log = logging.getLogger(__name__)
__all__ = ["App", "Collected", "build_app"]


class NotConfigured(SetupError):
    """The database has no municipality configuration and none can be loaded automatically."""


class _BuiltOnFirstUse:
    """`App.engine`: the engine, built (and core.engine, its dialogs and the Prometheus client imported) when
    first asked for. The admin commands read the municipality and the database and never ask: ~0.1 s of
    their start-up (bench/startup_cli.py). A dataclass field whose default is this descriptor, so
    `App(..., engine=e)` and `dataclasses.replace(app, engine=e)` set it as before."""

    def __get__(self, app: App | None, owner: type | None = None) -> Any:
        if app is None:
            return None  # the field's default: build on first use
        engine = app.__dict__.get("_engine")
        if engine is None:
            engine = app.__dict__["_engine"] = _engine(app)
        return engine

    def __set__(self, app: App, engine: Engine | None) -> None:
        app.__dict__["_engine"] = engine


@dataclass
class App:
    settings: Settings
    db: Database
    photos: PhotoStore
    engine: Engine = _BuiltOnFirstUse()  # type: ignore[assignment]
    cluster: Cluster = field(default_factory=Cluster)
    """This worker's role and whether it leads (bots/roles.py); `otklik run --role` sets the role."""
    municipality: Municipality = None  # type: ignore[assignment]
    """The engine's municipality (read without building the engine); given by build_app, else the engine's."""
    geocoder: Geocoder | None = None
    """What the engine built on first use geocodes with (metered there); None: geocoding is off."""

    def __post_init__(self) -> None:
        if self.municipality is None:
            if self.__dict__.get("_engine") is None:
                raise TypeError("App needs an engine or the municipality to build one with")
            self.municipality = self.engine.municipality

    def close(self) -> None:
        self.db.close()

    def leader_lock(self) -> LeaderLock:
        """Leadership among the workers on this database: an advisory lock on PostgreSQL, always this
        process on SQLite."""
        return leader_lock(self.db.url)

    def pace(self, channel: str, rate: float, within: Pace | None = None) -> Pace:
        """Delivery's pace for a channel (the outbox: the platform's bulk limit, 30 Telegram / 20 VK messages
        a second): shared by every worker on PostgreSQL, so N workers together keep one bot under it; this
        process's own on SQLite (it is the only one). `within`: the bot's `shared_pace`, whose slots these
        calls then book together with their own."""
        if self.db.is_sqlite:
            return CallSpacer(rate)
        return SharedPace(
            self.db, f"outbox:{channel}", rate, within=within if isinstance(within, SharedPace) else None
        )

    def shared_pace(self, name: str, rate: float) -> Pace | None:
        """A platform rate that several workers must share (PostgreSQL) — every call of a bot, at
        TELEGRAM_RATE / VK_RATE —, or None on SQLite, where this process is the only one and keeps its own
        pace (with the platform's bursts)."""
        return None if self.db.is_sqlite else SharedPace(self.db, name, rate)

    def poll_positions(self) -> PollPositions:
        """Where long polls stopped, in the database: the next leader, on any host, resumes there."""
        return DbPollPositions(self.db)

    def schema_problem(self) -> str | None:
        """Why this worker must not start on the database (an older schema), or None."""
        return _schema_behind(self.settings.effective_database_url)

    async def collect_photos(self, now: datetime, grace: timedelta) -> Collected:
        """Photos nothing refers to, `grace` after their latest upload: file and row removed (and the
        object, from a shared bucket)."""
        collected = await collect_unused(self.db, self.photos, now, grace)
        if self.settings.photo_store:
            from storage.s3_photos import S3PhotoStore, collect_remote  # boto3 only when configured

            assert isinstance(self.photos, S3PhotoStore)
            await collect_remote(self.db.run, self.photos, now, grace)
        return collected

    async def remove_photo_files(self, shas: list[str]) -> Collected:
        """The files of photos whose rows are gone (a forgotten resident's drafts), unless uploaded again."""
        return await remove_files(self.db.run, self.photos, shas)


def prepare_database(settings: Settings) -> None:
    """Embedded SQLite is upgraded without asking; a server database only by `otklik db upgrade`."""
    if settings.is_embedded:
        prepare_data_folder(settings)
        url = settings.effective_database_url
        if not is_current(url):  # alembic (~0.1 s to import) only when there is something to apply
            from storage.migrate import upgrade

            upgrade(url)


def _schema_behind(url: str) -> str | None:
    if is_current(url):  # the usual case, answered without importing alembic
        return None
    from storage.migrate import schema_behind

    return schema_behind(url)


def check_schema(settings: Settings) -> None:
    """`otklik run` refuses a database whose schema is older than the code, in one line (exit 2): the
    other workers may still be running on it, and `otklik db upgrade` is the operator's step."""
    problem = _schema_behind(settings.effective_database_url)
    if problem is not None:
        raise SetupError(f"{problem}: run `otklik db upgrade` first")


def prepare_data_folder(settings: Settings) -> None:
    """DATA_DIR exists afterwards, or the operator is told in one line why it cannot."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"DATA_DIR {settings.data_dir}: cannot create it ({exc.strerror})") from exc


def load_config_file(db: Database, path: Path) -> tuple[Municipality, bool]:
    from core.municipality_file import load_toml_file  # the TOML checks need shapely: only when loading

    municipality = load_toml_file(path)
    changed = db.run_sync(lambda store: save_municipality(store.conn, municipality))
    return municipality, changed


def current_municipality(db: Database, settings: Settings) -> Municipality:
    municipality = db.run_sync(lambda store: load_municipality(store.conn))
    if municipality is not None:
        return municipality
    if settings.municipality_config is not None:
        return load_config_file(db, settings.municipality_config)[0]
    if settings.is_embedded:
        log.info("empty embedded database: loading the demo configuration (Irkutsk)")
        return load_config_file(db, DEMO_CONFIG_PATH)[0]
    raise NotConfigured(
        "the database has no municipality configuration: run `otklik config load FILE` "
        "or set MUNICIPALITY_CONFIG"
    )


def _geocoder(settings: Settings, db: Database) -> Geocoder | None:
    from storage.geocoding import build_geocoder  # geopy and aiohttp: only where updates are handled

    key = settings.yandex_geocoder_key.get_secret_value() if settings.yandex_geocoder_key else ""
    try:
        return build_geocoder(
            settings.geocoder,
            db,
            nominatim_url=settings.nominatim_url,
            yandex_key=key,
            contact=settings.webhook_base_url,
        )
    except ValueError as exc:
        raise NotConfigured(str(exc)) from exc


def build_app(settings: Settings, *, geocoding: bool = True) -> App:
    """Everything a command needs. `geocoding=False` for commands that handle no updates: the geocoder's
    client libraries are not even imported."""
    prepare_database(settings)
    db = Database(
        settings.effective_database_url,
        pool_size=settings.database_pool_size,
        statement_timeout=settings.database_statement_timeout,
    )
    try:
        municipality = current_municipality(db, settings)
        geocoder = _geocoder(settings, db) if geocoding else None
    except Exception:
        db.close()
        raise
    return App(
        settings=settings, db=db, photos=photo_store(settings), municipality=municipality, geocoder=geocoder
    )


def _engine(app: App) -> Engine:
    """The engine build_app's App hands out on first use (`App.engine`), with its updates and geocoder
    calls counted for `GET /metrics`."""
    from bots.metrics import MeteredGeocoder, observe_update
    from core.engine import Engine
    from core.personal_data import PrivacyPolicy

    settings = app.settings
    return Engine(
        app.db,
        app.municipality,
        default_language=settings.default_language,
        geocoder=MeteredGeocoder(app.geocoder) if app.geocoder is not None else None,
        observer=observe_update,
        privacy=PrivacyPolicy(settings.consent_required, settings.retention_days),
        web_url=settings.web_url,
    )


def photo_store(settings: Settings) -> PhotoStore:
    """DATA_DIR/photos, or a shared S3-compatible bucket (PHOTO_STORE=s3://…) cached there."""
    local = settings.data_dir / "photos"
    if not settings.photo_store:
        return PhotoStore(local)
    from storage.s3_photos import S3PhotoStore  # boto3 is imported only when a bucket is configured

    secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    return S3PhotoStore(
        local,
        settings.photo_store,
        endpoint_url=settings.s3_endpoint_url,
        access_key=settings.s3_access_key_id,
        secret_key=secret,
        region=settings.s3_region,
    )
