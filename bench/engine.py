"""Benchmark: N residents file a full report at once, steps interleaved, through the real engine and SQLite.

Every update goes through `Engine.handle`: claim the event key, load the dialog state, run the step, save the
state — committed before the reply is returned. Prints updates/s, p50/p99 latency per update and the process
memory per open dialog. Run: `.venv/bin/python bench/engine.py [--residents 2000] [--concurrency 64]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.orm import Session

from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.messages import ChatRef, Incoming, Location
from core.municipality_file import load_toml_file
from storage.database import Database
from storage.migrate import upgrade
from storage.municipality_store import save_municipality

DIALOG: list[dict[str, object]] = [
    {"command": "start"},
    {"button": "menu:new"},
    {"button": "cat:roads"},
    {"button": "sub:roads.pothole"},
    {"location": Location(52.2870, 104.2810)},
    {"text": "Глубокая яма на проезжей части у остановки, машины объезжают по встречной полосе."},
    {"button": "photos:done"},
    {"button": "review:submit"},
]
OPEN_AFTER = 5  # steps after which every dialog is open and half-way


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def run_round(
    engine: Engine, prefix: str, residents: int, step: int, concurrency: int, lat: array[float]
) -> None:
    """Step `step` of every resident's dialog, `concurrency` updates in flight (like a bot's update workers).
    Residents are made on the fly and latencies go to a preallocated array, so that the process memory
    measured is the bot's, not the simulation's."""
    fields = DIALOG[step]
    if prefix == "warm" and "location" in fields:  # elsewhere: the warm-up's tickets would otherwise be
        fields = {"location": Location(52.3100, 104.2600)}  # offered to everyone as "me too"
    pending = iter(range(residents))

    async def worker() -> None:
        for i in pending:
            chat = ChatRef("bench", f"{prefix}{i}", f"{prefix}{i}")
            incoming = Incoming(chat, f"{prefix}{i}-{step}", "ru", **fields)  # type: ignore[arg-type]
            started = time.perf_counter()
            replies = await engine.handle(incoming)
            if lat:
                lat[step * residents + i] = time.perf_counter() - started
            assert replies, (chat, step)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64, help="updates in flight at once")
    parser.add_argument(
        "--warmup",
        type=int,
        default=2000,
        help="residents who file a report first, so the process is measured warm, as a running service is",
    )
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    args = parser.parse_args()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        upgrade(url)
        db = Database(url)
        municipality = load_toml_file(DEMO_CONFIG_PATH)
        db.run_sync(lambda store: save_municipality(Session(bind=store.conn), municipality))
        engine = Engine(db, municipality)

        for step in range(len(DIALOG)):
            await run_round(engine, "warm", args.warmup, step, args.concurrency, array("d"))
        gc.collect()
        gc.freeze()
        base = rss_bytes()

        latencies = array("d", bytes(8 * args.residents * len(DIALOG)))
        started = time.perf_counter()
        open_rss = 0
        for step in range(len(DIALOG)):
            await run_round(engine, "r", args.residents, step, args.concurrency, latencies)
            if step == OPEN_AFTER - 1:
                gc.collect()
                open_rss = rss_bytes()
        elapsed = time.perf_counter() - started
        tickets = await db.run(lambda store: len(store.tickets.list(limit=10**9)))
        db.close()

    updates = len(latencies)
    latencies = array("d", sorted(latencies))
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    per_dialog = (open_rss - base) / args.residents
    print(
        f"residents:              {args.residents} (all dialogs open at once, {args.concurrency} in flight)"
    )
    print(f"updates:                {updates} in {elapsed:.2f} s")
    print(f"throughput:             {updates / elapsed:,.0f} updates/s")
    print(f"latency per update:     p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    rss = f"RSS {base / 2**20:.1f} → {open_rss / 2**20:.1f} MiB"
    print(f"memory per open dialog: {per_dialog:,.0f} bytes ({rss}; includes SQLite's page cache, ≤ 2 MiB)")
    print(f"tickets created:        {tickets - args.warmup}")


if __name__ == "__main__":
    asyncio.run(main())
