"""Several real `otklik run` processes on one PostgreSQL database (tests/e2e/test_cluster.py, bench): start
them, read their logs, ask them who leads."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from core.demo import DEMO_CONFIG_PATH
from tests.fakes import wait_for

OTKLIK = str(Path(sys.executable).with_name("otklik"))
LISTENING = re.compile(r"http on (http://\S+)")
CPU_PROFILE = """
import cProfile, runpy, signal, sys, time
out, sys.argv = sys.argv[1], sys.argv[2:]
profiler = cProfile.Profile(time.thread_time)
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(out)
"""
"""Runs a script (argv[2:]); profiles its main thread by the CPU clock from SIGUSR1 on (start-up left out),
the statistics written to argv[1] at its end."""


def cluster_environment(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "VK_", "DATABASE_", "WEBHOOK_", "HTTP_", "PHOTO_"))
    }
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        MUNICIPALITY_CONFIG=str(DEMO_CONFIG_PATH),
        GEOCODER="off",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT="0",
        PYTHONUNBUFFERED="1",
        CONSENT_REQUIRED="false",  # the consent step is tested in tests/core/test_privacy.py
        **extra,
    )
    return env


async def otklik(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run an `otklik` command to its end: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        OTKLIK, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@dataclass
class Worker:
    name: str
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    url: str = ""
    _reader: asyncio.Task[None] | None = None

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:  # drained all along: a full pipe would stall the worker
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if not self.url and (found := LISTENING.search(line)):
                self.url = found.group(1)

    async def ready(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(self.url + "/readyz") as response:
            return dict(await response.json())

    async def role(self) -> str | None:
        """`leader`, `standby` or `web`; None when it does not answer (dead, or not listening yet)."""
        if not self.url or self.process.returncode is not None:
            return None
        try:
            return str((await self.ready()).get("role"))
        except (aiohttp.ClientError, OSError):
            return None

    def profile_from_now(self) -> None:
        """A worker started with `profile`: its profile starts here (not its start-up)."""
        self.process.send_signal(signal.SIGUSR1)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 30) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        assert self.process.returncode is not None
        return self.process.returncode


async def start_worker(
    name: str, env: dict[str, str], role: str = "all", timeout: float = 60, profile: Path | None = None
) -> Worker:
    """`otklik -v run --role ROLE`, returned once it listens (its address read from its log). `profile`: run
    it under cProfile timed by its main thread's CPU clock (on a loaded machine wall-clock times charge the
    function that was preempted), profiling from `Worker.profile_from_now` on, its statistics written to that
    file when it stops (SIGTERM; not after SIGKILL)."""
    command = [OTKLIK, "-v", "run", "--role", role]
    if profile is not None:
        command = [sys.executable, "-c", CPU_PROFILE, str(profile), *command]
    process = await asyncio.create_subprocess_exec(*command, env=env, stderr=asyncio.subprocess.PIPE)
    worker = Worker(name, process)
    worker._reader = asyncio.create_task(worker._read())
    await wait_for(lambda: worker.url or process.returncode is not None, timeout, f"{name} to listen")
    assert process.returncode is None, worker.log
    return worker


async def roles(workers: list[Worker]) -> list[str | None]:
    return list(await asyncio.gather(*(w.role() for w in workers)))


async def one_leader(workers: list[Worker], timeout: float = 15) -> Worker:
    """Wait until exactly one of `workers` says it leads; that one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        seen = await roles(workers)
        if seen.count("leader") == 1:
            return workers[seen.index("leader")]
        assert seen.count("leader") <= 1, f"two leaders at once: {seen}"
        if loop.time() >= deadline:
            raise AssertionError(f"no leader after {timeout}s: {seen}")
        await asyncio.sleep(0.1)
