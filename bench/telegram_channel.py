"""Benchmark: the Telegram channel end to end, per library and mode, against the fake Bot API.

R residents each send M text messages at once (`/help`: two answers each); the clock runs from the first
update handed over until every update is handled and answered. Polling: all updates are queued in the fake
and fetched 100 at a time; webhook: all are posted at once. The fake server runs in the same process and
on the same core, so the figures include its share: read them as a lower bound, and as a comparison of the
two libraries on identical work.
Run: `.venv/bin/python bench/telegram_channel.py [--residents 200] [--messages 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web
from sqlalchemy.orm import Session

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


async def run(library: str, mode: str, residents: int, messages: int, data: Path) -> tuple[float, int]:
    url = f"sqlite:///{data / f'{library}-{mode}.sqlite3'}"
    upgrade(url)
    db = Database(url)
    municipality = load_toml_file(DEMO_CONFIG_PATH)
    db.run_sync(lambda store: save_municipality(Session(bind=store.conn), municipality))
    engine = Engine(db, municipality)
    fake = await FakeTelegram().start()
    channel = TelegramChannel(
        make_api(library, TOKEN, fake.url),
        engine,
        db,
        PhotoStore(data / "photos"),
        webhook_url="https://bench.example.org" if mode == "webhook" else "",
        webhook_secret="bench",
        options=Options(limits=UNLIMITED, busy_interval=0.005),
    )
    http = web.Application() if mode == "webhook" else None
    await channel.start(http)
    runner = None
    if http is not None:
        runner, local = await serve(http)
        fake.webhook_target = local + PATH

    async def nothing(_updates: object) -> None:
        return None

    users = [TelegramUser(fake, nothing, 100_000 + i) for i in range(residents)]
    updates = [user.message(text="/help") for _ in range(messages) for user in users]
    expected = 2 * len(updates)
    started = time.perf_counter()
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
    elapsed = time.perf_counter() - started
    assert len(fake.sent) == expected, (len(fake.sent), expected)
    await channel.stop()
    if runner is not None:
        await runner.cleanup()
    await fake.stop()
    db.close()
    return elapsed, len(updates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--library", choices=["aiogram", "ptb"], action="append")
    parser.add_argument("--mode", choices=["polling", "webhook"], action="append")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="otklik-bench-tg-") as tmp:
        for library in args.library or ["aiogram", "ptb"]:
            for mode in args.mode or ["polling", "webhook"]:
                elapsed, n = asyncio.run(run(library, mode, args.residents, args.messages, Path(tmp)))
                print(
                    f"{library:8} {mode:8} {n} updates, {2 * n} messages sent: {elapsed:6.2f} s  "
                    f"{n / elapsed:7.0f} updates/s  {1000 * elapsed / n:5.2f} ms/update"
                )


if __name__ == "__main__":
    main()
