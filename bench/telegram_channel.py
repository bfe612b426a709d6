"""Benchmark: the Telegram channel end to end, per library and mode, against the fake Bot API.

R residents each send M text messages at once (`/help`: two answers each); the clock runs from the first
update handed over until every update is handled and answered. Polling: all updates are queued in the fake
and fetched 100 at a time; webhook: all are posted at once (≤ 100 in flight). The fake Bot API runs in a
child process, so on a machine with two free cores it does not share the bot's; the bot's own CPU per
update (process_time) is printed beside the wall-clock rate, as the figure to read on a busy machine.
Run: `.venv/bin/python bench/telegram_channel.py [--residents 200] [--messages 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from bots.runner import settle_for_serving
from bots.telegram import make_api
from bots.telegram.channel import Options, TelegramChannel
from bots.telegram.sender import Limits
from bots.telegram.webhook import PATH
from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.municipality_file import load_toml_file
from storage.database import Database
from storage.migrate import upgrade
from storage.municipality_store import save_municipality
from storage.photos import PhotoStore
from tests.fakes import serve
from tests.fakes.telegram_api import TOKEN, FakeTelegram, TelegramUser

UNLIMITED = Limits(chat_rate=1e6, chat_burst=1000, bot_rate=1e6, bot_burst=1000)


async def serve_fake(mode: str, residents: int, messages: int) -> None:
    """(In the child process) the fake Bot API: its URL on stdout; on "warm <webhook target>" it hands over
    ten updates and says "warm"; on "go" the measured ones, and prints the wall-clock seconds until all are
    handled and answered; stops at EOF."""
    fake = await FakeTelegram().start()
    print(fake.url, flush=True)
    loop = asyncio.get_running_loop()
    command = (await loop.run_in_executor(None, sys.stdin.readline)).split()
    fake.webhook_target = command[1] if len(command) > 1 else ""

    async def nothing(_updates: object) -> None:
        return None

    # A few updates first, unmeasured: what a running bot has done long before (its first Update parsed, its
    # first answers sent; aiogram builds each type it meets on first use).
    warm = [TelegramUser(fake, nothing, 99_000 + i).message(text="/help") for i in range(10)]
    await deliver(fake, mode, warm, 0)
    print("warm", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    users = [TelegramUser(fake, nothing, 100_000 + i) for i in range(residents)]
    updates = [user.message(text="/help") for _ in range(messages) for user in users]
    started = time.perf_counter()
    await deliver(fake, mode, updates, len(fake.sent))
    elapsed = time.perf_counter() - started
    print(elapsed, flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    await fake.stop()


async def deliver(fake: FakeTelegram, mode: str, updates: list[dict[str, Any]], sent_before: int) -> None:
    """Hand `updates` to the bot; return once each is handled and answered (two messages each)."""
    expected = sent_before + 2 * len(updates)
    if mode == "polling":
        fake.push(*updates)
        last = updates[-1]["update_id"]
        await fake.wait_for(lambda: fake.confirmed > last and len(fake.sent) >= expected, timeout=600)
    else:
        limit = asyncio.Semaphore(100)  # Telegram's max_connections is 40 by default, 100 at most

        async def post(update: dict[str, object]) -> None:
            async with limit:
                assert await fake.post_webhook(update) == 200

        await asyncio.gather(*(post(u) for u in updates))
    assert len(fake.sent) == expected, (len(fake.sent), expected)


async def run(
    library: str, mode: str, residents: int, messages: int, data: Path, profile: str = ""
) -> tuple[float, float, int]:
    """Wall-clock seconds (measured by the fake), the bot process's CPU seconds, and the updates handled.
    `profile`: a file to write the bot process's cProfile of the measured part to."""
    url = f"sqlite:///{data / f'{library}-{mode}.sqlite3'}"
    upgrade(url)
    db = Database(url)
    municipality = load_toml_file(DEMO_CONFIG_PATH)
    db.run_sync(lambda store: save_municipality(store.conn, municipality))
    engine = Engine(db, municipality)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        mode,
        "--residents",
        str(residents),
        "--messages",
        str(messages),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    fake_url = (await child.stdout.readline()).decode().strip()
    channel = TelegramChannel(
        make_api(library, TOKEN, fake_url),
        engine,
        db,
        PhotoStore(data / "photos"),
        webhook_url="https://bench.example.org" if mode == "webhook" else "",
        webhook_secret="bench",
        options=Options(limits=UNLIMITED),  # the poller as in production (busy_interval 0.1 s)
    )
    http = web.Application() if mode == "webhook" else None
    await channel.start(http)
    runner = None
    target = ""
    if http is not None:
        runner, local = await serve(http)
        target = local + PATH
    child.stdin.write(f"warm {target}\n".encode())
    await child.stdin.drain()
    if await child.stdout.readline() != b"warm\n":
        raise RuntimeError("the fake Bot API failed; see its traceback above")
    settle_for_serving()  # the collector as `otklik run` sets it once it serves
    profiler = cProfile.Profile(time.process_time) if profile else None
    cpu = time.process_time()
    if profiler is not None:
        profiler.enable()
    child.stdin.write(b"go\n")
    await child.stdin.drain()
    line = await child.stdout.readline()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    cpu = time.process_time() - cpu
    if not line:
        raise RuntimeError("the fake Bot API failed; see its traceback above")
    elapsed = float(line)
    await channel.stop()
    child.stdin.close()
    await child.wait()
    if runner is not None:
        await runner.cleanup()
    db.close()
    return elapsed, cpu, residents * messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--library", choices=["aiogram", "ptb"], action="append")
    parser.add_argument("--mode", choices=["polling", "webhook"], action="append")
    parser.add_argument("--profile", metavar="PREFIX", help="cProfile the bot to PREFIX-LIB-MODE.prof")
    parser.add_argument("--serve", choices=["polling", "webhook"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_fake(args.serve, args.residents, args.messages))
        return
    with tempfile.TemporaryDirectory(prefix="otklik-bench-tg-") as tmp:
        for library in args.library or ["aiogram", "ptb"]:
            for mode in args.mode or ["polling", "webhook"]:
                profile = f"{args.profile}-{library}-{mode}.prof" if args.profile else ""
                elapsed, cpu, n = asyncio.run(
                    run(library, mode, args.residents, args.messages, Path(tmp), profile)
                )
                print(
                    f"{library:8} {mode:8} {n} updates, {2 * n} messages sent: {elapsed:6.2f} s  "
                    f"{n / elapsed:7.0f} updates/s  {1000 * elapsed / n:5.2f} ms/update wall  "
                    f"{1000 * cpu / n:5.2f} ms/update bot CPU ({n / cpu:5.0f} updates per CPU-second)"
                )


if __name__ == "__main__":
    main()
