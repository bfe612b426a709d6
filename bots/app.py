"""The composition root: the only place that knows settings, storage, core and channels together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from bots.errors import SetupError
from bots.settings import Settings
from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.municipality import Municipality
from core.ports import Geocoder
from storage.database import Database
from storage.municipality_store import load_municipality, save_municipality
from storage.photo_gc import Collected, collect_unused
from storage.photos import PhotoStore
from storage.revision import is_current
from storage.store import SqlUnitOfWork

log = logging.getLogger(__name__)
__all__ = ["App", "Collected", "build_app"]


class NotConfigured(SetupError):
    """The database has no municipality configuration and none can be loaded automatically."""


@dataclass
class App:
    settings: Settings
    db: Database
    photos: PhotoStore
    engine: Engine

    def close(self) -> None:
        self.db.close()

    async def collect_photos(self, now: datetime, grace: timedelta) -> Collected:
        """Photos nothing refers to, `grace` after their latest upload: file and row removed."""
        return await collect_unused(self.db, self.photos, now, grace)


def prepare_database(settings: Settings) -> None:
    """Embedded SQLite is upgraded without asking; a server database only by `otklik db upgrade`."""
    if settings.is_embedded:
        prepare_data_folder(settings)
        url = settings.effective_database_url
        if not is_current(url):  # alembic (~0.1 s to import) only when there is something to apply
            from storage.migrate import upgrade

            upgrade(url)


def prepare_data_folder(settings: Settings) -> None:
    """DATA_DIR exists afterwards, or the operator is told in one line why it cannot."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"DATA_DIR {settings.data_dir}: cannot create it ({exc.strerror})") from exc


def load_config_file(db: Database, path: Path) -> tuple[Municipality, bool]:
    from core.municipality_file import load_toml_file  # the TOML checks need shapely: only when loading

    municipality = load_toml_file(path)
    changed = db.run_sync(lambda store: save_municipality(_session(store), municipality))
    return municipality, changed


def _session(store: SqlUnitOfWork) -> Session:
    return Session(bind=store.conn, join_transaction_mode="create_savepoint")


def current_municipality(db: Database, settings: Settings) -> Municipality:
    municipality = db.run_sync(lambda store: load_municipality(_session(store)))
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
    db = Database(settings.effective_database_url)
    try:
        municipality = current_municipality(db, settings)
        geocoder = _geocoder(settings, db) if geocoding else None
    except Exception:
        db.close()
        raise
    engine = Engine(db, municipality, default_language=settings.default_language, geocoder=geocoder)
    return App(settings=settings, db=db, photos=PhotoStore(settings.data_dir / "photos"), engine=engine)
