"""Benchmark: Open311 through the real HTTP server on SQLite — `GET requests.json` at 100k tickets with the
default window (the latest 90 days, page size 1,000), and POST throughput.

Tickets are spread over three years across all subcategories (so the default window holds ≈ 8k of 100k),
each with its create and assign events and a third with a staff comment. The reads go through aiohttp to
the shared server (`web/server.py`), one at a time, timed at the client; POSTs file real routed tickets
(routing, deadline, events, staff card lookup) through `open311.submit`.
Run: `.venv/bin/python bench/open311.py [--tickets 100000] [--reads 200] [--posts 300] [--concurrency 8]`.
Target: p99 ≤ 100 ms for the read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from sqlalchemy import text

from bots.app import App
from bots.settings import Settings
from core import open311
from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.geo import city_bounds
from core.municipality_file import load_toml_file
from storage.database import Database
from storage.migrate import upgrade
from storage.municipality_store import save_municipality
from storage.photos import PhotoStore
from storage.store import sqlite_timestamp
from tests.fakes import serve
from web.server import build_http

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
CHUNK = 50_000
COLUMNS = (
    "category_code, subcategory_code, lat, lon, address, location_source, description, author_channel, "
    "author_chat_id, author_user_id, language, organisation_code, status, created_at, updated_at, deadline, "
    "overdue_notified"
)
INSERT = f"INSERT INTO tickets (number, {COLUMNS}) VALUES ({', '.join('?' * 18)})"
EVENT = (
    "INSERT INTO ticket_events (ticket_number, action, at, actor, from_status, to_status, comment, photos, "
    "data) VALUES (?, ?, ?, ?, ?, ?, ?, '[]', '{}')"
)
DESCRIPTION = "Описание проблемы для нагрузочного теста Open311."
STATUSES = ("assigned", "in_progress", "resolved", "closed", "rejected")


def fill(db: Database, count: int, rng: random.Random) -> None:
    m = load_toml_file(DEMO_CONFIG_PATH)
    box = city_bounds(m)
    subs = [(c.parent, c.code) for c in m.categories if c.parent is not None]
    for first in range(1, count + 1, CHUNK):
        tickets, events = [], []
        for n in range(first, min(first + CHUNK, count + 1)):
            category, sub = rng.choice(subs)
            created = NOW - timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
            at = sqlite_timestamp(created)
            due = sqlite_timestamp(created + timedelta(days=14))
            lat, lon = rng.uniform(box.south, box.north), rng.uniform(box.west, box.east)
            tickets.append((n, category, sub, lat, lon, f"улица {n % 977}, {n % 89}", "pin", DESCRIPTION,
                            "bench", str(n), str(n), "ru", "roads_service", rng.choice(STATUSES), at, at, due,
                            0))  # fmt: skip
            events.append((n, "create", at, "resident:bench", None, "new", ""))
            events.append((n, "assign", at, "router", "new", "assigned", ""))
            if n % 3 == 0:
                events.append((n, "comment", at, "staff:1", "assigned", "assigned", "Бригада выехала."))
        db.run_sync(
            lambda uow, t=tickets, e=events: (uow.raw.executemany(INSERT, t), uow.raw.executemany(EVENT, e))
        )
    db.run_sync(lambda uow: uow.conn.execute(text("ANALYZE")))


def figures(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[max(0, int(len(ms) * 0.99) - 1)]
    return f"{name}: n={len(ms)} p50={statistics.median(ms):.1f} ms p99={p99:.1f} ms max={ms[-1]:.1f} ms"


async def run(args: argparse.Namespace, tmp: Path) -> None:
    url = f"sqlite:///{tmp}/open311.sqlite3"
    upgrade(url)
    db = Database(url)
    m = load_toml_file(DEMO_CONFIG_PATH)
    db.run_sync(lambda uow: save_municipality(uow.conn, m))
    started = time.perf_counter()
    fill(db, args.tickets, random.Random(args.seed))
    print(f"{args.tickets:,} tickets with their events in {time.perf_counter() - started:.1f} s")
    settings = Settings(_env_file=None, data_dir=tmp, database_url=url, open311_rate_per_minute=100_000)  # type: ignore[call-arg]
    app = App(
        settings=settings, db=db, photos=PhotoStore(tmp / "photos"), engine=Engine(db, m, clock=lambda: NOW)
    )
    key = db.run_sync(
        lambda uow: open311.create_key(uow, "bench", can_write=True, rate_per_minute=100_000, now=NOW)
    )
    runner, base = await serve(build_http(app))
    try:
        async with aiohttp.ClientSession() as session:
            times, sizes = [], []
            for i in range(args.reads + 10):
                t0 = time.perf_counter()
                async with session.get(f"{base}/open311/v2/requests.json") as response:
                    body = await response.read()
                    assert response.status == 200, body[:200]
                if i >= 10:  # warm-up
                    times.append(time.perf_counter() - t0)
                    sizes.append(len(json.loads(body)))
            print(figures(f"GET requests.json, default window ({sizes[0]} requests a page)", times))
            times = []
            for _ in range(args.reads):
                t0 = time.perf_counter()
                async with session.get(
                    f"{base}/open311/v2/requests.xml", params={"page_size": "100"}
                ) as response:
                    await response.read()
                times.append(time.perf_counter() - t0)
            print(figures("GET requests.xml, page_size=100", times))

            form = {"api_key": key, "service_code": "roads.pothole", "lat": "52.2870", "long": "104.2810",
                    "description": "Яма на дороге, тест.", "email": "bench@example.org"}  # fmt: skip
            semaphore = asyncio.Semaphore(args.concurrency)

            async def post() -> float:
                async with semaphore:
                    t0 = time.perf_counter()
                    async with session.post(f"{base}/open311/v2/requests.json", data=form) as response:
                        assert response.status == 200, await response.text()
                    return time.perf_counter() - t0

            t0 = time.perf_counter()
            latencies = await asyncio.gather(*(post() for _ in range(args.posts)))
            elapsed = time.perf_counter() - t0
            print(figures(f"POST requests.json, {args.concurrency} in flight", list(latencies)))
            print(f"POST throughput: {args.posts / elapsed:.0f} requests/s")
    finally:
        await runner.cleanup()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
