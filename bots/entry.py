"""The `otklik` executable: what no command should ever show — a traceback for Ctrl-C pressed while Python
is still importing (seconds, with aiogram), or a BrokenPipeError when the reader stops early
(`otklik tickets show 2 --json | head -1`)."""

from __future__ import annotations

import gc
import os
import sys

INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped with Ctrl-C
BROKEN_PIPE = 141  # 128 + SIGPIPE, what `head` leaves the commands it stopped reading from


def main() -> int:
    # Start-up makes hundreds of thousands of objects (SQLAlchemy, pydantic and aiogram classes) and frees
    # few: the cyclic collector's passes over them are ~10 % of start-up's CPU. Off until the command runs
    # (bots/cli.py turns it on), or for `otklik run` until it is ready (bots/runner.py: collect, freeze, on).
    gc.disable()
    try:
        from bots.cli import main as cli_main

        status = cli_main()
        sys.stdout.flush()  # inside the try: a closed pipe shows up here, not at interpreter exit
        return status
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that flush is silent too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())
