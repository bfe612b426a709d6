"""Benchmark: `otklik run` start-up with each Telegram library, against the fake Bot API.

For each library a fresh `otklik run` (SQLite in a temporary data folder, TELEGRAM_API_URL at the fake,
HTTP_PORT=0) is started R times; printed: the seconds from the process's start until its log says
"otklik is running" (the first run also creates and migrates the database, so it is reported apart), the CPU
it used until then (the figure to read on a busy machine), and its RSS (/proc/<pid>/status) once idle a
moment after that. Targets (issue 17): ready ≤ 1 s, idle RSS ≤ 120 MiB with either library.
Run: `.venv/bin/python bench/startup.py [--runs 3] [--checkout DIR …]` (several checkouts, e.g. an export of
the previous commit, are started side by side, interleaved run by run, so a busy machine slows them alike).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.telegram_api import TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "import sys; sys.path.insert(0, {root!r}); from bots.entry import main; raise SystemExit(main())"
READY = "otklik is running"


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmRSS")


async def start_once(
    library: str, fake_url: str, data: Path, idle: float, root: Path = ROOT
) -> tuple[float, float, float]:
    """Seconds until ready, the CPU seconds used until then, and the idle RSS in MiB."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data),
        "DATA_DIR": str(data),
        "HTTP_PORT": "0",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake_url,
        "TELEGRAM_LIBRARY": library,
    }
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ENTRY.format(root=str(root)),  # this checkout's code, not the installed one's
        "--verbose",  # the INFO lines, "otklik is running" among them, on stderr
        "run",
        env=env,
        cwd=data,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        while True:
            try:
                line = await asyncio.wait_for(process.stderr.readline(), 0.005)
            except TimeoutError:
                line = b""
            if READY.encode() in line:
                ready = time.perf_counter() - started
                cpu = cpu_seconds(process.pid)
                break
            if process.returncode is not None or time.perf_counter() - started > 60:
                raise RuntimeError(f"otklik run did not get ready: {line!r}")
        await asyncio.sleep(idle)
        return ready, cpu, rss_mib(process.pid)
    finally:
        process.terminate()
        await process.wait()


async def run(runs: int, idle: float, roots: list[Path]) -> None:
    fake = await FakeTelegram().start()
    try:
        for library in ("aiogram", "ptb"):
            folders = [tempfile.TemporaryDirectory(prefix="otklik-bench-start-") for _ in roots]
            try:  # a data folder per checkout: each first run migrates its own database
                data = [Path(folder.name) for folder in folders]
                first = [
                    (await start_once(library, fake.url, data[n], idle, root))[0]
                    for n, root in enumerate(roots)
                ]
                results: list[list[tuple[float, float, float]]] = [[] for _ in roots]
                for _ in range(runs):
                    for n, root in enumerate(roots):
                        results[n].append(await start_once(library, fake.url, data[n], idle, root))
            finally:
                for folder in folders:
                    folder.cleanup()
            for n, root in enumerate(roots):
                ready = statistics.median(r for r, _, _ in results[n])
                cpu = statistics.median(c for _, c, _ in results[n])
                rss = statistics.median(m for _, _, m in results[n])
                where = f"  [{root}]" if len(roots) > 1 else ""
                print(
                    f"{library:8} ready in {ready:5.2f} s (median of {runs}; "
                    f"first run, migrating: {first[n]:5.2f} s), CPU until ready {cpu:5.2f} s  "
                    f"idle RSS {rss:5.0f} MiB{where}"
                )
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds after ready before RSS is read")
    parser.add_argument("--checkout", type=Path, action="append", help="another source tree to start")
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.idle, [root.resolve() for root in args.checkout or [ROOT]]))


if __name__ == "__main__":
    main()
