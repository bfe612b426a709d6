"""Benchmark and proof of issue 15: N `otklik run` workers on one PostgreSQL database behind a round-robin
load balancer, the fake Telegram Bot API posting webhooks for many residents running the whole report dialog
(and `--staff` people of the roads service, told of every new ticket through the outbox); one worker (the
leader) is killed with SIGKILL mid-run and started again.

Prints end-to-end updates/s, reply latency p50/p99, the outbox's busiest second and busiest 5 s (checked: at
most 30 a second), the bot's (direct answers and outbox, as the fake Bot API received them; checked: at most
TELEGRAM_RATE a second over 5 s), tickets created against dialogs completed, duplicates, lost replies, the
leader's fail-over time and the CPU per update of the workers, of the bench and of the database's backends
(when the server runs on this machine). The bench (fake Bot API, the balancer in its webhook poster,
residents) runs in this process on the same cores as the workers, over bench/lean_http.py rather than
aiohttp to take as little of them as it can: read the figures as a lower bound.

`--bot-rate` is TELEGRAM_RATE for the workers: 30 (Telegram's limit for a bot, the default) binds the cluster
to about 25 updates/s of this dialog however many workers it has; a raised rate (1000: bots with paid
broadcasts) shows the cluster's own capacity. The outbox keeps to 30 either way.

Run (PostgreSQL server in TEST_DATABASE_URL or --database-url; a private database is created and dropped):
    .venv/bin/python bench/cluster.py --workers 3 --residents 5000 --duration 60 --bot-rate 30,1000
    .venv/bin/python bench/cluster.py --workers 1,2,3 --residents 300 --duration 20 --bot-rate 30,1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import lean_http
from bench.lean_http import Balancer
from core.demo import DEMO_CONFIG_PATH
from core.municipality_file import load_toml_file
from core.staffing import create_invite
from storage.database import Database
from storage.urls import normalise_url
from tests.cluster_support import Worker, cluster_environment, one_leader, otklik, start_worker
from tests.fakes.telegram_api import JSON_FIELDS, ApiError, Call, FakeTelegram, Sent, TelegramUser

CENTRE = (52.2870, 104.2810)
STAFF_IDS = 2_000_000
NUMBER = re.compile(r"(?:№|No\.) (\d+)")


def busiest_5s(per_second: Counter[int]) -> float:
    """Messages a second over the busiest 5 s: a rate's slots are spaced on the database's clock, their
    arrival here is jittered by the loaded machine (a late message lands in the next second)."""
    return max((sum(per_second[t + d] for d in range(5)) / 5 for t in list(per_second)), default=0.0)


class IndexedTelegram(FakeTelegram):
    """The fake Bot API with messages indexed by chat (thousands of residents, no linear scans), served and
    posting its webhooks through bench/lean_http.py: the same methods and checks as tests' fake, on an HTTP
    layer that leaves the two cores to the workers. Its webhooks go round robin over `balancer.targets`, the
    workers (the load balancer in front of them, in the poster instead of a proxy hop of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_chat: dict[int, list[Sent]] = defaultdict(list)
        self.per_second: Counter[int] = Counter()
        """Messages the bot sent, by second: the bot's whole rate (direct answers and outbox)."""
        self.outbox_per_second: Counter[int] = Counter()
        """Messages to staff (only notifications from the outbox reach them after they joined), by second."""
        self.balancer = Balancer()
        self._server: asyncio.Server | None = None

    def _record(self, sent: Sent, content: dict[str, Any]) -> dict[str, Any]:
        answer = super()._record(sent, content)
        self.by_chat[sent.chat_id].append(sent)
        second = int(time.time())
        self.per_second[second] += 1
        if sent.chat_id >= STAFF_IDS:
            self.outbox_per_second[second] += 1
        return answer

    def _find(self, params: dict[str, Any]) -> Sent:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        for sent in reversed(self.by_chat[chat_id]):
            if sent.message_id == message_id:
                return sent
        raise ApiError(400, "Bad Request: message to edit not found")

    def to(self, chat_id: int) -> list[Sent]:
        return self.by_chat[chat_id]

    async def start(self) -> IndexedTelegram:
        self._server, self.url = await lean_http.serve(self._serve)
        return self

    async def stop(self) -> None:
        self._stopping = True
        self._released.set()
        self._wake()
        self.balancer.close()
        if self._server is not None:
            self._server.close()

    async def _serve(
        self, _verb: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        """A Bot API call (`/bot<token>/<method>`, a JSON or urlencoded body; no files in this bench)."""
        path, _, query = target.partition("?")
        _, bot, method = [*path.split("/", 2), "", ""][:3]
        params: dict[str, Any] = dict(parse_qsl(query))
        kind = headers.get("content-type", "")
        if kind.startswith("application/json"):
            params.update(json.loads(body))
        elif kind.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode()))
        elif body:
            return _failure(ApiError(400, f"Bad Request: the bench's fake reads no {kind or 'untyped'} body"))
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                params[key] = json.loads(params[key])
        self.calls.append(Call(method, params, {}, time.monotonic()))
        if bot != "bot" + self.token:
            return _failure(ApiError(401, "Unauthorized"))
        return await self._call(method, params)

    async def _call(self, method: str, params: dict[str, Any]) -> tuple[int, bytes]:
        try:
            return 200, json.dumps({"ok": True, "result": await self.run_method(method, params, {})}).encode()
        except ApiError as exc:
            return _failure(exc)

    async def post_webhook(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        assert self.webhook.get("url"), "no webhook set"
        token = self.webhook.get("secret_token", "") if secret is None else secret
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        path = urlsplit(self.webhook["url"]).path
        status, body = await self.balancer.post(path, json.dumps(update).encode(), headers)
        if status == 200 and body.startswith(b"{"):  # a method in the answer: Telegram makes that call too
            call = json.loads(body)
            if isinstance(call, dict) and isinstance(method := call.pop("method", None), str):
                self.calls.append(Call(method, call, {}, time.monotonic()))
                await self._call(method, call)
        return status


def _failure(exc: ApiError) -> tuple[int, bytes]:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return exc.code, json.dumps(body).encode()


@dataclass
class Figures:
    posted: int = 0
    latencies: list[float] = field(default_factory=list)
    dialogs: int = 0
    numbers: list[int] = field(default_factory=list)
    lost: int = 0
    failed_posts: int = 0


class TimeUp(Exception):
    """The run is over: a resident stops before its next action, so no update is left half handled."""


class Resident(TelegramUser):
    def __init__(
        self, fake: IndexedTelegram, user_id: int, figures: Figures, deadline: float = math.inf
    ) -> None:
        super().__init__(fake, self._post, user_id)
        self.figures = figures
        self.indexed = fake
        self.deadline = deadline

    async def _post(self, updates: list[dict[str, Any]]) -> None:
        if time.monotonic() >= self.deadline:
            raise TimeUp
        for update in updates:
            started = time.perf_counter()
            for _attempt in range(30):  # as Telegram does: a webhook that failed is posted again
                if await self.fake.post_webhook(update) == 200:
                    break
                self.figures.failed_posts += 1
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError(f"update {update['update_id']} never accepted")
            self.figures.latencies.append(time.perf_counter() - started)
            self.figures.posted += 1

    async def send(self, *updates: dict[str, Any]) -> list[Sent]:
        before = len(self.indexed.by_chat[self.user_id])
        await self.deliver(list(updates))
        self.replies = self.indexed.by_chat[self.user_id][before:]
        if not self.replies:
            self.figures.lost += 1
        return self.replies

    async def report(self, n: int) -> None:
        await self.command("new")
        await self.press("cat:roads")
        await self.press("sub:roads.pothole")
        lat, lon = CENTRE[0] + random.uniform(-0.02, 0.02), CENTRE[1] + random.uniform(-0.02, 0.02)
        await self.pin(lat, lon)
        if any(data == "nearby:different" for m in self.replies for _l, data in m.buttons()):
            await self.press("nearby:different")
        await self.say(f"Яма на дороге, отчёт {self.user_id}-{n}: машины объезжают по встречной.")
        await self.press("photos:done")
        await self.press("review:submit")
        self.figures.dialogs += 1
        found = next((NUMBER.search(m.text) for m in self.replies if NUMBER.search(m.text)), None)
        if found:
            self.figures.numbers.append(int(found.group(1)))


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (Linux /proc; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends_cpu(admin: Any, database: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend serving `database`, when the server runs on this
    machine (none otherwise): its share of the same two cores."""
    with admin.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": database})
        return {pid: cpu_seconds(pid) for (pid,) in pids}


async def run_cluster(
    server_url: str,
    workers_n: int,
    residents: int,
    duration: float,
    kill: bool,
    bot_rate: float,
    staff: int = 40,
    profile: Path | None = None,
) -> dict[str, Any]:
    name = f"otklik_bench_cluster_{os.getpid()}_{workers_n}"
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    fake = await IndexedTelegram().start()
    balancer = fake.balancer
    workers: list[Worker] = []
    tmp = Path(tempfile.mkdtemp(prefix="otklik-cluster-"))

    def env_of(n: int) -> dict[str, str]:
        return cluster_environment(
            url,
            tmp / f"w{n}",
            TELEGRAM_BOT_TOKEN=fake.token,
            TELEGRAM_API_URL=fake.url,
            WEBHOOK_BASE_URL="https://bench.invalid",
            WEBHOOK_SECRET="bench-webhook-secret",
            TELEGRAM_RATE=str(bot_rate),
        )

    try:
        for args in (("db", "upgrade"), ("config", "load", env_of(0)["MUNICIPALITY_CONFIG"])):
            code, _out, err = await otklik(env_of(0), *args)
            assert code == 0, err
        workers = list(
            await asyncio.gather(
                *(
                    start_worker(f"w{n}", env_of(n), profile=profile / f"w{n}.prof" if profile else None)
                    for n in range(workers_n)
                )
            )
        )
        balancer.targets = [w.url for w in workers]
        await one_leader(workers, timeout=30)

        figures = Figures()
        # staff of the roads service: every new ticket queues a card for each of them, so the outbox has
        # more to send than Telegram's 30 notifications a second and its pace is put to the test
        municipality = load_toml_file(DEMO_CONFIG_PATH)
        db = Database(url)
        try:
            now = datetime.now(UTC)
            codes = [
                db.run_sync(lambda uow: create_invite(uow, municipality, "roads_service", None, now)).code
                for _ in range(staff)
            ]
        finally:
            db.close()
        for n, code in enumerate(codes):
            member = Resident(fake, STAFF_IDS + n, Figures())  # not counted in the run's figures
            await member.command("staff", code)
        staffed = sum(bool(fake.to(STAFF_IDS + n)) for n in range(staff))
        deadline = time.monotonic() + duration
        ids = iter(range(1_000_000, 1_000_000 + residents))

        async def resident_loop() -> None:
            resident = Resident(fake, next(ids), figures, deadline)
            with contextlib.suppress(TimeUp):  # a dialog cut short files nothing: it is not counted either
                await resident.command("start")
                for n in itertools.count():
                    await resident.report(n)

        if profile:
            for worker in workers:
                worker.profile_from_now()
        database_cpu = backends_cpu(admin, name)
        worker_cpu = -sum(cpu_seconds(w.process.pid) for w in workers)
        bench_cpu = -time.process_time()
        fake.per_second.clear()
        fake.outbox_per_second.clear()
        loops = [asyncio.create_task(resident_loop()) for _ in range(residents)]
        started = time.monotonic()
        fail_over = None
        if kill and workers_n > 1:
            await asyncio.sleep(duration / 3)
            victim = await one_leader(workers)
            worker_cpu += cpu_seconds(victim.process.pid)
            victim.kill()
            killed_at = time.monotonic()
            await victim.process.wait()
            balancer.targets = [w.url for w in workers if w is not victim]
            survivors = [w for w in workers if w is not victim]
            await one_leader(survivors, timeout=30)
            fail_over = time.monotonic() - killed_at
            index = workers.index(victim)
            workers[index] = await start_worker(f"w{index}b", env_of(index))
            worker_cpu -= cpu_seconds(workers[index].process.pid)  # its start-up is not the cluster's work
            balancer.targets = [w.url for w in workers]
        errors = [
            r for r in await asyncio.gather(*loops, return_exceptions=True) if isinstance(r, BaseException)
        ]
        elapsed = time.monotonic() - started
        worker_cpu += sum(cpu_seconds(w.process.pid) for w in workers)
        bench_cpu += time.process_time()
        # backends of the run: those that were there at its start count from there, the others (a restarted
        # worker's) from their start
        server_cpu = sum(cpu - database_cpu.get(pid, 0.0) for pid, cpu in backends_cpu(admin, name).items())
        await asyncio.sleep(3)  # the outbox drains (notifications are not on the residents' path)

        with create_engine(normalise_url(url)).connect() as conn:
            tickets = int(conn.execute(text("SELECT count(*) FROM tickets")).scalar())
            distinct = int(conn.execute(text("SELECT count(DISTINCT description) FROM tickets")).scalar())
            outbox_sent = int(
                conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'sent'")).scalar()
            )
        latencies = sorted(figures.latencies)
        busiest_outbox = max(fake.outbox_per_second.values(), default=0)  # messages, as Telegram counts
        outbox_5s = busiest_5s(fake.outbox_per_second)
        bot_5s = busiest_5s(fake.per_second)
        posted = max(1, figures.posted)
        return {
            "workers": workers_n,
            "TELEGRAM_RATE": bot_rate,
            "updates/s": figures.posted / elapsed,
            "p50 ms": 1000 * statistics.median(latencies) if latencies else 0.0,
            "p99 ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0,
            "dialogs": figures.dialogs,
            "tickets": tickets,
            "duplicates": tickets - distinct,
            "lost replies": figures.lost,
            "webhook retries": figures.failed_posts,
            "staff": staffed,
            "outbox sent": outbox_sent,
            "outbox busiest s": busiest_outbox,
            "outbox busiest 5 s, per s": outbox_5s,
            "outbox <= 30": "yes" if outbox_5s <= 30 else "NO",
            "bot busiest s": max(fake.per_second.values(), default=0),
            "bot busiest 5 s, per s": bot_5s,
            f"bot <= {bot_rate:g}": "yes" if bot_5s <= bot_rate else "NO",
            "worker CPU ms/update": 1000 * worker_cpu / posted,
            "bench CPU ms/update": 1000 * bench_cpu / posted,
            "database CPU ms/update": 1000 * server_cpu / posted,
            "fail-over s": fail_over,
            "resident errors": len(errors),
        }
    finally:
        for worker in workers:
            if worker.process.returncode is None:
                await worker.stop()
        await fake.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""))
    parser.add_argument("--workers", default="3", help="a count, or counts separated by commas: 1,2,3")
    parser.add_argument("--residents", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--no-kill", action="store_true", help="do not kill the leader mid-run")
    parser.add_argument(
        "--staff", type=int, default=40, help="staff of the roads service, each told of every new ticket"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="a folder: each worker's main thread runs under cProfile (CPU time, the run only, not "
        "start-up), its statistics written there",
    )
    parser.add_argument(
        "--bot-rate",
        default="30",
        help="TELEGRAM_RATE for the workers (messages/s for the bot's answers; the outbox keeps to 30), "
        "or rates separated by commas: 30,1000",
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("a PostgreSQL server is needed: --database-url or TEST_DATABASE_URL")
    for rate, count in itertools.product(
        (float(r) for r in args.bot_rate.split(",")), [int(n) for n in args.workers.split(",")]
    ):
        result = asyncio.run(
            run_cluster(
                args.database_url,
                count,
                args.residents,
                args.duration,
                not args.no_kill,
                rate,
                args.staff,
                args.profile,
            )
        )
        print(
            "  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
