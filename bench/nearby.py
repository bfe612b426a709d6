"""Benchmark: the "me too" nearby search at 10k, 100k and 1M tickets on SQLite.

Tickets are spread uniformly over the demo city's bounding box (about 23 × 22 km) across all subcategories,
15 % of them open — a city after some years. Each lookup is the store's real query (`nearby_tickets`: the
indexed bounding box on (category_code, lat, lon), then geopy's geodesic distance), at a random point for a
random subcategory with its configured radius, inside one read transaction as in the engine's step.
Prints the time per lookup; the target is ≤ 5 ms at a million tickets.
Run: `.venv/bin/python bench/nearby.py [--sizes 10000,100000,1000000] [--lookups 2000]`.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from core.demo import DEMO_CONFIG_PATH
from core.geo import city_bounds
from core.municipality_file import load_toml_file
from storage.database import Database
from storage.migrate import upgrade
from storage.municipality_store import save_municipality
from storage.store import SqlUnitOfWork, sqlite_timestamp

OPEN_SHARE = 0.15
OPEN = ("new", "assigned", "in_progress", "reopened")
CLOSED = ("closed", "rejected")
CHUNK = 50_000
DESCRIPTION = "Описание проблемы для нагрузочного теста поиска рядом."


COLUMNS = (
    "category_code, subcategory_code, lat, lon, address, location_source, description, author_channel, "
    "author_chat_id, author_user_id, language, status, created_at, updated_at, overdue_notified"
)
INSERT = f"INSERT INTO tickets ({COLUMNS}) VALUES ({', '.join('?' * 15)})"


def generate(
    rng: random.Random, count: int, start: int, subs: list[tuple[str, str]], box: Any
) -> list[tuple]:
    """Rows for the raw sqlite3 cursor: SQLAlchemy's executemany would take minutes for a million."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    rows = []
    for i in range(start, start + count):
        category, sub = rng.choice(subs)
        created = sqlite_timestamp(now - timedelta(minutes=rng.randrange(3 * 365 * 24 * 60)))
        status = rng.choice(OPEN) if rng.random() < OPEN_SHARE else rng.choice(CLOSED)
        lat, lon = rng.uniform(box.south, box.north), rng.uniform(box.west, box.east)
        address = f"улица {i % 977}, {i % 89}"
        rows.append((category, sub, lat, lon, address, "pin", DESCRIPTION, "bench", str(i), str(i), "ru",
                     status, created, created, 0))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--mmap", type=int, default=0, help="PRAGMA mmap_size in MiB (default: SQLite's, off)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(args.seed)

    municipality = load_toml_file(DEMO_CONFIG_PATH)
    box = city_bounds(municipality)
    subs = [(c.parent, c.code) for c in municipality.categories if c.parent is not None]
    radius = {c.code: c.nearby_radius_m for c in municipality.categories}

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/nearby.sqlite3"
        upgrade(url)
        db = Database(url)
        db.run_sync(lambda store: save_municipality(store.conn, municipality))
        if args.mmap:
            db.run_sync(lambda store: store.conn.exec_driver_sql(f"PRAGMA mmap_size={args.mmap * 2**20}"))
        heads = ("tickets", "insert", "mean", "p50", "p99", "found/lookup", "mean if none")
        print("  ".join(f"{h:>{w}}" for h, w in zip(heads, (10, 8, 8, 8, 8, 12, 12), strict=True)))
        have = 0
        opened: list[tuple[str, str, float, float]] = []
        for size in sizes:
            started = time.perf_counter()
            while have < size:
                count = min(CHUNK, size - have)
                rows = generate(rng, count, have, subs, box)
                db.run_sync(lambda store, rows=rows: store.raw.executemany(INSERT, rows))
                have += count
                opened.extend((r[0], r[1], r[2], r[3]) for r in rows if r[11] in OPEN)
            db.run_sync(lambda store: store.conn.execute(text("ANALYZE")))
            inserted = time.perf_counter() - started

            # half at random points, half a few metres from an open ticket (a resident reporting it again)
            points = [
                (*rng.choice(subs), rng.uniform(box.south, box.north), rng.uniform(box.west, box.east))
                for _ in range(args.lookups // 2)
            ]
            for category, sub, lat, lon in rng.sample(opened, args.lookups - len(points)):
                points.append((category, sub, lat + rng.uniform(-1e-4, 1e-4), lon + rng.uniform(-1e-4, 1e-4)))
            rng.shuffle(points)
            gc.collect()

            def lookups(store: SqlUnitOfWork, points=points) -> tuple[list[float], list[float], int]:  # type: ignore[no-untyped-def]
                times, empty, found = [], [], 0
                for category, sub, lat, lon in points:
                    t0 = time.perf_counter()
                    n = len(store.tickets.nearby(category, sub, lat, lon, radius[sub], 3))
                    elapsed = time.perf_counter() - t0
                    times.append(elapsed)
                    if n == 0:
                        empty.append(elapsed)
                    found += n
                return times, empty, found

            warm = points[:100]
            db.run_sync(lambda store, warm=warm: lookups(store, warm))  # warm the statement cache and pages
            times, empty, found = db.run_sync(lookups)
            times.sort()
            ms = [t * 1000 for t in times]
            mean, p50, p99 = statistics.fmean(ms), statistics.median(ms), ms[int(len(ms) * 0.99) - 1]
            print(
                f"{size:>10,}  {inserted:>7.1f}s  {mean:>6.3f}ms  {p50:>6.3f}ms  {p99:>6.3f}ms"
                f"  {found / len(points):>12.2f}  {statistics.fmean(empty) * 1000:>10.3f}ms"
            )
        plan = db.run_sync(
            lambda store: store.conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT number FROM tickets WHERE category_code = 'roads' "
                "AND lat BETWEEN 52.28 AND 52.29 AND lon BETWEEN 104.28 AND 104.29 "
                "AND subcategory_code = 'roads.pothole' AND status IN ('new', 'assigned')"
            ).all()
        )
        print("query plan:", "; ".join(str(row[-1]) for row in plan))
        db.close()


if __name__ == "__main__":
    main()
