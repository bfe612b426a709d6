"""Benchmark: N residents file a full report at once, steps interleaved, through the real engine and storage.

Every update goes through `Engine.handle`: claim the event key, load the dialog state, run the step, save the
state — committed before the reply is returned. Prints updates/s, the CPU time per update (process time, so
a shared machine can be read honestly), p50/p99/p99.9 latency per update and the process memory per open
dialog. Run: `.venv/bin/python bench/engine.py [--residents 2000] [--concurrency 64]`; on PostgreSQL
`--database-url postgresql://…` (a database of its own: tables are created, rows are added, nothing is
dropped), with `--processes 2` for several processes on one database; `--seed 1000000` stores that many
finished dialogs (and their handled delivery ids) first, as in a city that has run for a while.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.messages import ChatRef, Incoming, Location
from core.municipality_file import load_toml_file
from storage.database import Database
from storage.migrate import upgrade
from storage.municipality_store import save_municipality
from storage.store import SqlUnitOfWork
from storage.tables import dialogs, processed_events, tickets

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
SEED_STATE = '{"lang":"ru","seen":true,"last_event":":seed-8"}'  # a resident whose report is filed


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
    if prefix.startswith("warm") and "location" in fields:  # elsewhere: the warm-up's tickets would
        fields = {"location": Location(52.3100, 104.2600)}  # otherwise be offered to everyone as "me too"
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


def seed(db: Database, count: int, prefix: str) -> None:
    """`count` finished dialogs and one handled delivery id each, written in bulk (not through the engine:
    a million dialogs through it would take the benchmark's whole budget)."""
    events = processed_events
    now = datetime.now(UTC)
    chunk = 20_000
    for start in range(0, count, chunk):
        ids = range(start, min(count, start + chunk))
        db.run_sync(
            lambda store, ids=ids: (
                store.conn.execute(
                    dialogs.insert(),
                    [
                        {
                            "channel": "bench",
                            "chat_id": f"{prefix}{i}",
                            "user_id": f"{prefix}{i}",
                            "state": SEED_STATE,
                            "updated_at": now,
                        }
                        for i in ids
                    ],
                ),
                store.conn.execute(
                    events.insert(),
                    [{"channel": "bench", "bot": "", "event_key": f"{prefix}{i}-7", "at": now} for i in ids],
                ),
            )
        )


def close_open_tickets(store: SqlUnitOfWork) -> None:
    """Earlier runs' tickets on the same database, at the same spot, would be offered as "me too"; and the
    warm-up's, 2,000 open tickets stacked at one point, would be read by every search of the run on
    PostgreSQL, once the statistics (a city's open tickets being few) make the status index look best."""
    store.conn.execute(
        tickets.update()
        .where(tickets.c.author_channel == "bench", tickets.c.status != "closed")
        .values(status="closed")
    )


def close_bench_tickets(db: Database) -> None:
    db.run_sync(close_open_tickets)


def maintain(db: Database) -> None:
    """PostgreSQL, after the warm-up: vacuum and analyse, as autovacuum keeps a city's database (a test server
    may run without it). Otherwise earlier runs' dead rows would be measured as this run's cost, growing from
    run to run, and on a new database the plans would be made for the empty tables the warm-up filled."""
    if not db.is_sqlite:  # a connection of its own: the pool's are held by the database's threads
        engine = create_engine(db.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")
        engine.dispose()


def server_cpu(db: Database, name: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving this process, when the server runs on this
    machine (0 otherwise): on a shared 2-core box the database's share has to be read too."""
    pids = db.run_sync(
        lambda store: store.conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %(name)s", {"name": name}
        ).all()
    )
    total = 0
    for (pid,) in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def unpin_checkpointer(cores: set[int]) -> None:
    """The process is pinned to one core to measure the bot's own work per core; SQLite's checkpointer
    thread is background work off the updates' path, and may run on any core, as the PostgreSQL server's
    background processes do in the PostgreSQL runs. Kept on the bot's core it takes turns with the update
    being handled (`--pin-checkpointer`: one at a time, the slowest 0.1 % then wait for a checkpoint's slice
    of the core)."""
    if not hasattr(os, "sched_setaffinity"):
        return
    for thread in threading.enumerate():
        if thread.name == "otklik-sqlite-checkpoint" and thread.native_id is not None:
            os.sched_setaffinity(thread.native_id, cores)


def measure(args: argparse.Namespace, url: str, prefix: str) -> dict[str, float]:
    """Warm up, (wait for the go signal,) run the residents' dialogs; the figures of this process."""
    name = f"otklik-bench-{prefix}"
    if not url.startswith("sqlite"):
        url = f"{url}{'&' if '?' in url else '?'}application_name={name}"
    db = Database(url)
    try:
        municipality = load_toml_file(DEMO_CONFIG_PATH)
        db.run_sync(lambda store: save_municipality(store.conn, municipality))
        engine = Engine(db, municipality)
        if not args.child:
            close_bench_tickets(db)
        if args.seed:
            started = time.perf_counter()
            seed(db, args.seed, f"{prefix}seed")
            if db.is_sqlite:  # a city that has run for a while: its WAL is checkpointed, its tables analysed
                db.run_sync(lambda store: store.conn.exec_driver_sql("ANALYZE"))
            print(f"seeded:                 {args.seed:,} dialogs in {time.perf_counter() - started:.1f} s")

        async def go() -> dict[str, float]:
            await db.run(lambda store: None)  # the database's threads are started
            if not args.pin_checkpointer:
                unpin_checkpointer(args.cores)
            for step in range(len(DIALOG)):
                await run_round(engine, f"warm{prefix}", args.warmup, step, args.concurrency, array("d"))
            await db.run(close_open_tickets)
            before = await db.run(lambda store: len(store.tickets.list(limit=10**9)))
            maintain(db)
            gc.collect()
            gc.freeze()
            base = rss_bytes()
            if args.child:  # several processes: start together
                print("ready", flush=True)
                sys.stdin.readline()
            latencies = array("d", bytes(8 * args.residents * len(DIALOG)))
            server0 = 0.0 if db.is_sqlite else server_cpu(db, name)
            wall0, cpu0, started = time.time(), time.process_time(), time.perf_counter()
            open_rss = 0
            for step in range(len(DIALOG)):
                await run_round(engine, prefix, args.residents, step, args.concurrency, latencies)
                if step == OPEN_AFTER - 1:
                    open_rss = rss_bytes()
            elapsed, cpu, wall1 = time.perf_counter() - started, time.process_time() - cpu0, time.time()
            server = 0.0 if db.is_sqlite else server_cpu(db, name) - server0
            tickets = await db.run(lambda store: len(store.tickets.list(limit=10**9))) - before
            ordered = sorted(latencies)
            return {
                "updates": len(latencies),
                "elapsed": elapsed,
                "cpu": cpu,
                "server_cpu": server,
                "start": wall0,
                "end": wall1,
                "p50": statistics.median(ordered),
                "p99": ordered[int(len(ordered) * 0.99) - 1],
                "p999": ordered[int(len(ordered) * 0.999) - 1],
                "max": ordered[-1],
                "per_dialog": (open_rss - base) / args.residents,
                "rss_base": base,
                "rss_open": open_rss,
                "tickets": tickets,
            }

        return asyncio.run(go())
    finally:
        db.close()


def report(args: argparse.Namespace, r: dict[str, float], label: str = "") -> None:
    updates = r["updates"]
    ms = 1000
    print(f"{label}residents:              {args.residents} (all open at once, {args.concurrency} in flight)")
    print(f"{label}updates:                {updates:.0f} in {r['elapsed']:.2f} s")
    print(f"{label}throughput:             {updates / r['elapsed']:,.0f} updates/s")
    print(
        f"{label}CPU per update:         {r['cpu'] / updates * 1e6:.0f} µs "
        f"(≈ {updates / r['cpu']:,.0f} updates/s per busy core)"
    )
    print(
        f"{label}latency per update:     p50 {r['p50'] * ms:.2f} ms, p99 {r['p99'] * ms:.2f} ms, "
        f"p99.9 {r['p999'] * ms:.2f} ms, max {r['max'] * ms:.2f} ms"
    )
    if r["server_cpu"]:
        print(f"{label}database CPU per update: {r['server_cpu'] / updates * 1e6:.0f} µs (its backends)")
    rss = f"RSS {r['rss_base'] / 2**20:.1f} → {r['rss_open'] / 2**20:.1f} MiB"
    print(f"{label}memory per open dialog: {r['per_dialog']:,.0f} bytes ({rss}; includes the page cache)")
    print(f"{label}tickets created:        {r['tickets']:.0f}")


def several(args: argparse.Namespace, url: str) -> None:
    """`--processes P`: P copies of this benchmark on one database, started together after their warm-up."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    children = []
    run = uuid.uuid4().hex[:6]  # the database keeps earlier runs' delivery ids
    for n in range(args.processes):
        command = [sys.executable, __file__, "--child", "--database-url", url, "--prefix", f"{run}p{n}"]
        command += ["--residents", str(args.residents), "--concurrency", str(args.concurrency)]
        command += ["--warmup", str(args.warmup)]
        if args.all_cores:
            command.append("--all-cores")
        else:
            command += ["--core", str(cores[n % len(cores)])]
        children.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for child in children:  # warm-up done everywhere
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, _ = child.communicate()
        results.append(json.loads(out.strip().splitlines()[-1]))
    for n, r in enumerate(results):
        report(args, r, f"[{n}] ")
    updates = sum(r["updates"] for r in results)
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    cpu = sum(r["cpu"] for r in results)
    server = sum(r["server_cpu"] for r in results)
    print(f"all {args.processes} processes:        {updates / span:,.0f} updates/s together in {span:.2f} s")
    print(f"CPU per update:         {cpu / updates * 1e6:.0f} µs in the bench processes")
    if server:
        print(f"database CPU per update: {server / updates * 1e6:.0f} µs")


def main() -> None:
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
    parser.add_argument(
        "--pin-checkpointer",
        action="store_true",
        help="keep SQLite's background checkpointer on the bot's core too (by default it may use any core)",
    )
    parser.add_argument("--database-url", default="", help="PostgreSQL (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=0, help="finished dialogs stored before the run")
    parser.add_argument("--processes", type=int, default=1, help="processes on one database (needs a URL)")
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        core = args.core if args.core is not None else sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {core})
    prefix = args.prefix or uuid.uuid4().hex[:6]  # a database may hold earlier runs' residents

    if args.processes > 1:
        if not args.database_url:
            parser.error("--processes needs --database-url (SQLite has one writer)")
        upgrade(args.database_url)
        db = Database(args.database_url)
        close_bench_tickets(db)
        db.close()
        several(args, args.database_url)
        return
    if args.child:
        print(json.dumps(measure(args, args.database_url, prefix)), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        upgrade(url)
        report(args, measure(args, url, prefix))


if __name__ == "__main__":
    main()
