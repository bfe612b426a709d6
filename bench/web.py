"""Benchmark: the city's web at 100k tickets on SQLite (or PostgreSQL with `--database-url`).

Seeds tickets spread over the demo city's bounding box across all subcategories and organisations, created
over three years, 15 % open, each with a history as the bot writes it (create and assign by the system, a
staff member's take, a resolve for each resolved or closed one and the system's close; 30 % of those rated,
5 % reopened first): ~5 events a ticket. Then asks the real HTTP
server (the shared aiohttp application over this database, signed in as a dispatcher: the whole city) and
prints p50/p99 of the wall time per request on localhost for: a map bbox query (a district of ~2 × 2 km), the
filtered list page, a ticket page, the dashboard for the last 90 days and for all three years, and the time to
stream the whole CSV export with the server process's peak resident memory growth while it streams.
Targets (issue 12): bbox ≤ 50 ms p99, dashboard ≤ 300 ms p99, export memory flat.
Run: `.venv/bin/python bench/web.py [--tickets 100000] [--requests 200] [--database-url postgresql://...]`.
A PostgreSQL database given is WIPED (its public schema is dropped): use a scratch one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
from sqlalchemy import create_engine, text

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
from storage.urls import normalise_url
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


def history(
    rng: random.Random, number: int, status: str, created: datetime, resolved: datetime | None
) -> list:
    """The events the bot writes for such a ticket (the statistics read take, resolve, reopen and rate)."""
    at = created
    events = [(number, "create", at, "resident:console:r", None, "new", "{}"),
              (number, "assign", at, "system", "new", "assigned", "{}")]  # fmt: skip
    if status == "new":
        return events[:1]
    if status == "assigned":
        return events
    taken = created + timedelta(hours=rng.uniform(0.2, 48))
    if resolved is not None:
        taken = min(taken, resolved)
    events.append((number, "take", taken, "staff:1", "assigned", "in_progress", "{}"))
    if resolved is None:
        return events
    events.append((number, "resolve", resolved, "staff:1", "in_progress", "resolved", "{}"))
    if rng.random() < 0.05:
        again = resolved + timedelta(hours=5)
        later = again + timedelta(hours=20)
        events += [(number, "reopen", again, "resident:console:r", "resolved", "reopened", "{}"),
                   (number, "resolve", later, "staff:1", "reopened", "resolved", "{}")]  # fmt: skip
    if rng.random() < 0.3:
        score = f'{{"rating": "{rng.randint(1, 5)}"}}'
        events.append((number, "rate", events[-1][2] + timedelta(hours=1), "resident:console:r", "resolved",
                       "resolved", score))  # fmt: skip
    events.append((number, "close", events[-1][2] + timedelta(days=1), "system", "resolved", "closed", "{}"))
    return events


def seed(db: Database, municipality: Any, count: int) -> int:
    """Returns how many events were written."""
    rng = random.Random(7)
    box = city_bounds(municipality)
    subs = [(c.parent, c.code) for c in municipality.categories if c.parent]
    orgs = [o.code for o in municipality.organisations if o.kind != "dispatch"]
    tickets, events = [], []
    for number in range(1, count + 1):
        category, sub = rng.choice(subs)
        created = NOW - timedelta(minutes=rng.randrange(3 * 365 * 24 * 60), microseconds=rng.randrange(10**6))
        status = rng.choice(OPEN) if rng.random() < 0.15 else rng.choice(("closed", "closed", "rejected"))
        resolved = created + timedelta(hours=rng.uniform(2, 400)) if status in DONE else None
        lat = rng.uniform(box.south, box.north)
        lon = rng.uniform(box.west, box.east)
        author = f"r{number % 5000}"
        address = f"ул. Тестовая, {number % 300}"
        tickets.append(
            (number, category, sub, lat, lon, address, "pin", "Описание", "console", author, author, "ru",
             rng.choice(orgs), status, created, created, created + timedelta(days=10), resolved, False)
        )  # fmt: skip
        events += history(rng, number, status, created, resolved)

    def insert(store: Any) -> None:
        raw = store.raw
        if store.is_sqlite:
            stamp = sqlite_timestamp
            raw.executemany(
                f"INSERT INTO tickets ({TICKET_COLUMNS}) VALUES ({', '.join('?' * 19)})",
                [
                    (*r[:14], stamp(r[14]), stamp(r[15]), stamp(r[16]), r[17] and stamp(r[17]), 0)
                    for r in tickets
                ],
            )
            raw.executemany(
                f"INSERT INTO ticket_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, '', '[]', ?)",
                [(*e[:2], stamp(e[2]), *e[3:]) for e in events],
            )
            return
        with raw.copy(f"COPY tickets ({TICKET_COLUMNS}) FROM STDIN") as copy:
            for row in tickets:
                copy.write_row(row)
        with raw.copy(
            "COPY ticket_events (ticket_number, action, at, actor, from_status, to_status, data, comment, "
            "photos) FROM STDIN"
        ) as copy:
            for event in events:
                copy.write_row((*event, "", "[]"))
        raw.execute("SELECT setval('tickets_number_seq', (SELECT max(number) FROM tickets))")
        raw.execute("ANALYZE tickets")
        raw.execute("ANALYZE ticket_events")

    db.run_sync(insert)
    return len(events)


def rss() -> int:
    """This process's resident memory now, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(samples: list[float], target: float | None) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    line = f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   (n={len(ordered)})"
    if target is not None:
        verdict = "met" if p99 * 1000 <= target else "NOT met"
        line += f"   target p99 <= {target:.0f} ms: {verdict}"
    return line


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

            async def run(name: str, make: Any, times: int, target: float | None = None) -> None:
                for _ in range(3):  # warm-up, not measured: first plans, caches, connections
                    async with client.get(url + make()) as response:
                        await response.read()
                samples = []
                for _ in range(times):
                    path = make()
                    start = time.perf_counter()
                    async with client.get(url + path) as response:
                        await response.read()
                        assert response.status == 200, (path, response.status)
                    samples.append(time.perf_counter() - start)
                print(f"{name:<34} {timed(samples, target)}", flush=True)

            def bbox() -> str:
                lat = rng.uniform(box.south, box.north - 0.02)
                lon = rng.uniform(box.west, box.east - 0.03)
                return f"/web/api/tickets?bbox={lon},{lat},{lon + 0.03},{lat + 0.02}"

            await run("map bbox (~2 x 2 km)", bbox, requests, 50)
            await run("map bbox, open only", lambda: bbox() + "&status=assigned&status=new", requests, 50)
            await run("list page (open, by category)", lambda: "/web?status=new&category=roads", requests)
            await run("ticket page", lambda: f"/web/tickets/{rng.randrange(1, count + 1)}", requests)
            few = max(5, requests // 10)
            await run("dashboard, last 90 days", lambda: "/web/dashboard?from=2026-09-02", few, 300)
            await run("dashboard, all 3 years", lambda: "/web/dashboard?from=2023-01-01", few, 300)
            base = peak = rss()
            start = time.perf_counter()
            size = 0
            async with client.get(url + "/web/export.csv") as response:
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    peak = max(peak, rss())
            took = time.perf_counter() - start
            grew = (peak - base) / 1e6
            print(f"{'CSV export, all tickets':<34} {took:.2f} s ({size / 1e6:.1f} MB); "
                  f"resident memory grew {grew:.1f} MB at peak (target: flat)")  # fmt: skip
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default="", help="a scratch PostgreSQL database: it is wiped")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
        if args.database_url:
            wipe = create_engine(normalise_url(url))
            with wipe.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            wipe.dispose()
        upgrade(url)
        db = Database(url)
        municipality = load_toml_file(DEMO_CONFIG_PATH)
        db.run_sync(lambda store: save_municipality(store.conn, municipality))
        start = time.perf_counter()
        written = seed(db, municipality, args.tickets)
        kind = "PostgreSQL" if args.database_url else "SQLite"
        print(
            f"{kind}: seeded {args.tickets} tickets, {written} events in {time.perf_counter() - start:.1f} s"
        )
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        settings = Settings(_env_file=None, data_dir=Path(folder), web_session_secret=SECRET)  # type: ignore[call-arg]
        engine = Engine(db, municipality, clock=lambda: NOW)
        app = App(settings=settings, db=db, photos=PhotoStore(Path(folder) / "photos"), engine=engine)
        try:
            asyncio.run(measure(app, args.tickets, args.requests))
        finally:
            db.close()


if __name__ == "__main__":
    main()
