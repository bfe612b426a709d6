"""Benchmark: idle open widget panels held by one `otklik run`, and how fast a delivered message reaches one.

Starts `otklik run` with the widget on (a throwaway SQLite data folder), then opens N event streams
(`/widget/api/events`) of N residents — tokens signed with the run's WIDGET_SECRET — and waits until every one
is open. Printed: the server's RSS growth per open stream (target ≤ 20 KB). Then, K times, a message to one
random resident is queued in the outbox (as a staff action does, in its own transaction) and the time until
that resident's stream shows it is measured: p50/p99 with the delivery worker's 1 s idle poll included, and
the part after the worker took the row (target p99 ≤ 200 ms). The bench queues from its own process, so the
server's worker finds the rows at its poll; a staff action in the serving process wakes it at once.
Run: `.venv/bin/python bench/widget.py [--streams 2000] [--messages 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.widget.identity import Identity  # noqa: E402
from core.messages import ChatRef, Reply  # noqa: E402
from storage.database import Database  # noqa: E402

SECRET = "bench-widget-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("otklik run did not answer /healthz")


class Stream:
    def __init__(self, token: str) -> None:
        self.token = token
        self.received: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.response: aiohttp.ClientResponse | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, session: aiohttp.ClientSession, url: str) -> None:
        headers = {"X-Widget": "1", "X-Widget-Token": self.token}
        self.response = await session.get(url + "/widget/api/events", headers=headers)
        assert self.response.status == 200, self.response.status
        await self.response.content.readuntil(b"\n\n")
        self.task = asyncio.create_task(self.read())

    async def read(self) -> None:
        assert self.response is not None
        buffer = b""
        while chunk := await self.response.content.readany():
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if line.startswith(b"data: "):
                        text = json.loads(line[6:])["reply"]["text"]
                        self.received[text] = time.perf_counter()
                        self.wall[text] = time.time()


async def bench(streams: int, messages: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, streams * 2 + 512)), hard))
    data = Path(tempfile.mkdtemp(prefix="otklik-bench-widget-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATA_DIR": str(data),
        "DATABASE_URL": "",
        "WIDGET_ORIGINS": "self",
        "WIDGET_SECRET": SECRET,
        "HTTP_PORT": str(port),
        "GEOCODER": "off",
        "TELEGRAM_BOT_TOKEN": "",
        "VK_GROUP_TOKEN": "",
    }
    server = subprocess.Popen([str(ROOT / ".venv/bin/otklik"), "run"], env=env, cwd=data)
    identity = Identity(SECRET.encode())
    try:
        await wait_ready(url)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as s:
            warm = [Stream(identity.issue()) for _ in range(50)]
            for stream in warm:
                await stream.open(s, url)
            await asyncio.sleep(1.0)
            before = rss_kb(server.pid)
            opened = [Stream(identity.issue()) for _ in range(streams)]
            for start in range(0, streams, 200):
                await asyncio.gather(*(st.open(s, url) for st in opened[start : start + 200]))
            await asyncio.sleep(1.0)
            after = rss_kb(server.pid)
            each = (after - before) / streams
            print(f"{streams} open streams: server RSS {before} → {after} KB, {each:.1f} KB each")

            db = Database(f"sqlite:///{data / 'otklik.sqlite3'}")
            latencies: list[float] = []
            shown: dict[str, float] = {}
            for n in range(messages):
                stream = random.choice(opened)
                chat_id = identity.chat_id(stream.token)
                assert chat_id is not None
                message = f"bench message {n}"
                reply = Reply(text=message, chat=ChatRef("widget", chat_id, chat_id))
                await db.run(lambda uow, r=reply: uow.outbox.enqueue(r, datetime.now(UTC)))
                queued = time.perf_counter()
                while message not in stream.received:
                    await asyncio.sleep(0.002)
                latencies.append(stream.received[message] - queued)
                shown[message] = stream.wall[message]
            delivered = await db.run(delivered_at)
            db.close()
            report("queued → shown (with the worker's idle poll ≤ 1 s)", latencies)
            report("delivered → shown", [shown[m] - delivered[m] for m in shown])
            for stream in [*warm, *opened]:
                if stream.task is not None:
                    stream.task.cancel()
                if stream.response is not None:
                    stream.response.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def delivered_at(store: Any) -> dict[str, float]:
    """When the widget's sender wrote each bench message into the inbox (the delivery), by its text."""
    rows = store.conn.execute(text("SELECT payload, created_at FROM widget_inbox")).all()
    found = {}
    for payload, created in rows:
        body = json.loads(payload) if isinstance(payload, str) else payload
        at = datetime.fromisoformat(created) if isinstance(created, str) else created
        found[body["text"]] = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    return found


def report(what: str, latencies: list[float]) -> None:
    latencies = sorted(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000
    print(f"{what}, {len(latencies)} messages: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(bench(args.streams, args.messages))


if __name__ == "__main__":
    main()
