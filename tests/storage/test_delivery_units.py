"""Failures, repeats and redeliveries below the adapters: the failure classification, the engine's answer to a
repeated update, photos not downloaded, and the pruning of processed events by the timers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from alembic import command
from sqlalchemy import create_engine, func, pool, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from bots.app import App
from bots.background import lifecycle_timers, prune_processed_events
from bots.failures import is_transient
from bots.settings import Settings
from core.engine import Engine
from core.messages import NOT_KEPT, Incoming
from core.ports import DeliveryError
from storage.migrate import make_config, upgrade
from storage.photos import PhotoStore
from storage.tables import processed_events as events
from storage.urls import normalise_url
from tests.conftest import NOW
from tests.support import Clock, Resident, keys_of


# --- #3: one classification --------------------------------------------------------------------------------
def _raised_from(outer: Exception, inner: BaseException) -> Exception:
    try:
        raise outer from inner
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (aiohttp.ClientConnectionError("refused"), True),
        (DeliveryError("network down"), True),
        (_raised_from(RuntimeError("wrapped"), TimeoutError()), True),
        (DeliveryError("blocked", permanent=True), False),
        (IntegrityError("INSERT", {}, Exception("check constraint")), False),
        (ValueError("invalid literal for int()"), False),
        (KeyError("slots"), False),
        (OverflowError("int too large"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_failures_are_classified_transient_or_not(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


# --- #5: a repeated update re-asks --------------------------------------------------------------------------
async def test_repeated_latest_update_reasks_the_current_step(engine: Engine) -> None:
    """The answer to an update whose transaction committed may have died with the process."""
    r = Resident(engine)
    await r.command("start")
    new = Incoming(r.chat, "42", "ru", button="menu:new")
    assert keys_of(await engine.handle(new)) == ["report.category.ask"]
    assert keys_of(await engine.handle(new)) == ["report.category.ask"]
    state = await engine.db.run(lambda store: store.dialogs.load(r.chat))
    assert state is not None and state["flow"] == "report" and state["slots"] == {}


# --- #7: photos not kept ------------------------------------------------------------------------------------
async def test_wants_photos_follows_the_current_step(engine: Engine) -> None:
    r = Resident(engine)
    assert not await engine.wants_photos(r.chat)  # a chat never seen
    await r.command("start")
    assert not await engine.wants_photos(r.chat)  # the main menu
    await r.press("menu:new")
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.pin(52.2870, 104.2810)
    assert await engine.wants_photos(r.chat)  # the description: a photo with a caption is kept there
    await r.say("Яма глубиной сантиметров двадцать.")
    await r.expect("report.photos.ask")
    assert await engine.wants_photos(r.chat)


async def test_photos_not_kept_at_a_photo_step_are_asked_for_again(engine: Engine) -> None:
    """The step changed between the adapter's question and the update (another update of the chat came
    first): nothing half-stored reaches the draft, and the resident is asked to send them again."""
    r = Resident(engine)
    await r.command("start")
    await r.press("menu:new")
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.pin(52.2870, 104.2810)
    await r.say("Яма глубиной сантиметров двадцать.")
    await r.send(photos=(NOT_KEPT, NOT_KEPT))
    await r.expect("input.bad_photo", "report.photos.ask")
    state = await engine.db.run(lambda store: store.dialogs.load(r.chat))
    assert state is not None and "photos" not in state["slots"]


# --- #7: processed events by bot, pruned by age -------------------------------------------------------------
async def _event_count(engine: Engine) -> int:
    return int(
        await engine.db.run(
            lambda store: store.conn.execute(select(func.count()).select_from(events)).scalar()
        )
    )


async def test_processed_events_are_pruned_by_the_timers_after_the_configured_days(
    engine: Engine, photos: PhotoStore, tmp_path: Path
) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    r = Resident(engine)
    await r.command("start")
    await r.press("menu:new")
    assert await _event_count(engine) == 2
    settings = Settings(_env_file=None, data_dir=tmp_path, processed_events_days=7)  # type: ignore[call-arg]
    app = App(settings=settings, db=engine.db, photos=photos, engine=engine)  # type: ignore[arg-type]

    clock.advance(days=6, hours=23)
    assert await prune_processed_events(app) == 0  # within the redelivery horizon: kept

    clock.advance(hours=2)
    stopping = asyncio.Event()
    timers = asyncio.create_task(lifecycle_timers(app, {}, stopping))
    try:
        for _ in range(500):  # the timers' first round runs at once
            if await _event_count(engine) == 0 or timers.done():
                break
            await asyncio.sleep(0.01)
    finally:
        stopping.set()
        await timers
    assert await _event_count(engine) == 0


def test_processed_events_days_setting_defaults_to_a_week_and_must_be_positive() -> None:
    assert Settings(_env_file=None).processed_events_days == 7  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        Settings(_env_file=None, processed_events_days=0)  # type: ignore[call-arg]


def test_migration_0003_keeps_recorded_events_with_an_empty_bot(database_url: str) -> None:
    """Upgrading a database with handled updates: they stay (bot ""), pruned later like the rest."""
    insert = "INSERT INTO processed_events (channel, {columns}, at) VALUES ('telegram', {values}, :at)"
    upgrade(database_url, "0001")
    engine = create_engine(normalise_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(insert.format(columns="event_key", values="'1'")), {"at": NOW})
        upgrade(database_url, "0003")
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT channel, bot, event_key FROM processed_events")).all()
            assert [tuple(r) for r in rows] == [("telegram", "", "1")]
            conn.execute(text(insert.format(columns="bot, event_key", values="'42', '1'")), {"at": NOW})
        command.downgrade(make_config(database_url), "0001")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM processed_events")).scalar() == 0
    finally:
        engine.dispose()
