"""Benchmark: the city's web at 100k tickets on SQLite (or PostgreSQL with `--database-url`).

Seeds tickets spread over the demo city's bounding box across all subcategories and organisations, created
over three years, 15 % open, with a `resolve` event for each resolved or closed one; then asks the real HTTP
server (the shared aiohttp application over this database, signed in as a dispatcher: the whole city) and
prints p50/p99 of the wall time per request on localhost for: a map bbox query (a district of ~2 × 2 km), the
filtered list page, a ticket page, the dashboard for the last 90 days and for all three years, and the time to
stream the whole CSV export. Targets (issue): bbox ≤ 50 ms p99, dashboard ≤ 300 ms p99.
Run: `.venv/bin/python bench/web.py [--tickets 100000] [--requests 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from sqlalchemy.orm import Session

from bots.app import App
from bots.settings import Settings
from core import weblogin
from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.geo import city_bounds
from core.messages import ChatRef
from core.municipality_file import load_toml_file
from core.ports import NewStaff
from storage.database import Database
from storage.migrate import upgrade
from storage.municipality_store import save_municipality
from storage.photos import PhotoStore
from storage.store import sqlite_timestamp
from tests.fakes import serve
from web.dashboard.auth import SESSION_COOKIE, Signer
from web.server import build_http

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
OPEN = ("new", "assigned", "in_progress", "reopened")
DONE = ("resolved", "closed")
SECRET = "bench-secret"
TICKET_COLUMNS = (
    "number, category_code, subcategory_code, lat, lon, address, location_source, description, "
    "author_channel, author_chat_id, author_user_id, language, organisation_code, status, created_at, "
    "updated_at, deadline, resolved_at, overdue_notified"
)
EVENT_COLUMNS = "ticket_number, action, at, actor, from_status, to_status, comment, photos, data"


def seed(db: Database, municipality: Any, count: int) -> None:
    rng = random.Random(7)
    box = city_bounds(municipality)
    subs = [(c.parent, c.code) for c in municipality.categories if c.parent]
    orgs = [o.code for o in municipality.organisations if o.kind != "dispatch"]

    def insert(store: Any) -> None:
        raw = store.raw
        tickets, events = [], []
        for number in range(1, count + 1):
            category, sub = rng.choice(subs)
            created = NOW - timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
            status = rng.choice(OPEN) if rng.random() < 0.15 else rng.choice(("closed", "closed", "rejected"))
            resolved = created + timedelta(hours=rng.uniform(2, 400)) if status in DONE else None
            lat = rng.uniform(box.south, box.north)
            lon = rng.uniform(box.west, box.east)
            author = f"r{number % 5000}"
            at, due = sqlite_timestamp(created), sqlite_timestamp(created + timedelta(days=10))
            done = sqlite_timestamp(resolved) if resolved else None
            address = f"ул. Тестовая, {number % 300}"
            tickets.append(
                (number, category, sub, lat, lon, address, "pin", "Описание", "console", author, author, "ru",
                 rng.choice(orgs), status, at, at, due, done, 0)
            )  # fmt: skip
            if resolved is not None:
                events.append(
                    (number, "resolve", sqlite_timestamp(resolved), "staff:1", "in_progress", "resolved", "",
                     "[]", "{}")
                )  # fmt: skip
        raw.executemany(f"INSERT INTO tickets ({TICKET_COLUMNS}) VALUES ({', '.join('?' * 19)})", tickets)
        raw.executemany(f"INSERT INTO ticket_events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * 9)})", events)

    db.run_sync(insert)


def timed(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   (n={len(ordered)})"


async def measure(app: App, count: int, requests: int) -> None:
    municipality = app.engine.municipality

    def sign_in(store: Any) -> str:
        chat = ChatRef("console", "bench", "bench")
        member = store.staff.bind(NewStaff(chat, municipality.dispatch, "dispatcher", "Bench", "ru", NOW))
        link = weblogin.new_link(store, member, "http://bench", NOW)
        done = weblogin.redeem(store, link.url.rsplit("/", 1)[1], NOW)
        assert not isinstance(done, str)
        return done[1]

    session = await app.db.run(sign_in)
    cookie = Signer(SECRET.encode()).sign("session", session)
    runner, url = await serve(build_http(app))
    rng = random.Random(3)
    box = city_bounds(municipality)
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, cookies={SESSION_COOKIE: cookie}) as client:

            async def run(name: str, make: Any, times: int) -> None:
                samples = []
                for _ in range(times):
                    path = make()
                    start = time.perf_counter()
                    async with client.get(url + path) as response:
                        await response.read()
                        assert response.status == 200, (path, response.status)
                    samples.append(time.perf_counter() - start)
                print(f"{name:<34} {timed(samples)}")

            def bbox() -> str:
                lat = rng.uniform(box.south, box.north - 0.02)
                lon = rng.uniform(box.west, box.east - 0.03)
                return f"/web/api/tickets?bbox={lon},{lat},{lon + 0.03},{lat + 0.02}"

            await run("map bbox (~2 x 2 km)", bbox, requests)
            await run("map bbox, open only", lambda: bbox() + "&status=assigned&status=new", requests)
            await run("list page (open, by category)", lambda: "/web?status=new&category=roads", requests)
            await run("ticket page", lambda: f"/web/tickets/{rng.randrange(1, count + 1)}", requests)
            few = max(5, requests // 10)
            await run("dashboard, last 90 days", lambda: "/web/dashboard?from=2026-09-02", few)
            await run("dashboard, all 3 years", lambda: "/web/dashboard?from=2023-01-01", 5)
            start = time.perf_counter()
            size = 0
            async with client.get(url + "/web/export.csv") as response:
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
            took = time.perf_counter() - start
            print(f"{'CSV export, all tickets':<34} {took:.2f} s ({size / 1e6:.1f} MB)")
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.sqlite3"
        upgrade(url)
        db = Database(url)
        municipality = load_toml_file(DEMO_CONFIG_PATH)
        db.run_sync(lambda store: save_municipality(Session(bind=store.conn), municipality))
        start = time.perf_counter()
        seed(db, municipality, args.tickets)
        print(f"seeded {args.tickets} tickets in {time.perf_counter() - start:.1f} s")
        settings = Settings(_env_file=None, data_dir=Path(folder), web_session_secret=SECRET)  # type: ignore[call-arg]
        engine = Engine(db, municipality, clock=lambda: NOW)
        app = App(settings=settings, db=db, photos=PhotoStore(Path(folder) / "photos"), engine=engine)
        try:
            asyncio.run(measure(app, args.tickets, args.requests))
        finally:
            db.close()


if __name__ == "__main__":
    main()
