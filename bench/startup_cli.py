"""Benchmark: how long the admin commands take from start to exit (DESIGN.md §8's `otklik` commands).

Each command runs `--runs` times in a fresh interpreter, the commands interleaved run by run (so a busy
machine slows them all alike), on an embedded database with the demo city loaded and a few tickets; prints
the median and the fastest wall time of each, the median CPU time (user + system, the steadier figure on a
busy machine), and the bare interpreter's start-up for reference. Run:
`.venv/bin/python bench/startup_cli.py [--runs 9] [--checkout DIR …]` (several checkouts, e.g. an export of
the previous commit, are measured side by side, interleaved, on the same database).
`-X importtime` on one command shows where the time goes:
`.venv/bin/python -X importtime -m bots.entry tickets list 2>&1 | sort -t'|' -k2 -n | tail`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "import sys; sys.path.insert(0, {root!r}); from bots.entry import main; raise SystemExit(main())"
COMMANDS = {
    "tickets list": ["tickets", "list"],
    "stats": ["stats"],
    "staff list": ["staff", "list"],
    "outbox list": ["outbox", "list"],
    "config load": ["config", "load", str(ROOT / "core" / "demo" / "irkutsk.toml")],
}
REPORT = "/start\n1\n1\n1\n/loc 52.2870 104.2810\nЯма у остановки.\n1\n1\n"


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def otklik(args: list[str], env: dict[str, str], stdin: str = "", root: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU seconds of one command, start to exit."""
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", ENTRY.format(root=str(root)), *args],
        input=stdin,
        env=env,
        cwd=env["DATA_DIR"],  # no .env from the checkout
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"otklik {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--checkout", type=Path, action="append", help="another source tree to time")
    args = parser.parse_args()
    roots = [root.resolve() for root in args.checkout or [ROOT]]
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "DATA_DIR": data, "DATABASE_URL": "", "GEOCODER": "off"}
        for variable in ("TELEGRAM_BOT_TOKEN", "VK_GROUP_TOKEN", "MUNICIPALITY_CONFIG"):
            env.pop(variable, None)
        otklik(["db", "upgrade"], env)
        for n in range(3):
            otklik(["chat", "--user", f"bench-{n}"], env, REPORT)
        times: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for _ in range(args.runs):
            cpu = children_cpu()
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare = (time.perf_counter() - started, children_cpu() - cpu)
            times.setdefault(("python -c pass", 0), []).append(bare)
            for name, command in COMMANDS.items():
                for n, root in enumerate(roots):
                    times.setdefault((name, n), []).append(otklik(command, env, root=root))
    print(f"{'command':<16} {'median':>8} {'fastest':>8} {'CPU':>8}   ({args.runs} runs each, interleaved)")
    for (name, n), values in times.items():
        where = f"  [{roots[n]}]" if len(roots) > 1 and name in COMMANDS else ""
        wall = [w for w, _ in values]
        cpu = statistics.median(c for _, c in values)
        print(f"{name:<16} {statistics.median(wall):>7.3f}s {min(wall):>7.3f}s {cpu:>7.3f}s{where}")


if __name__ == "__main__":
    main()
