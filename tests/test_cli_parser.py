"""`otklik`'s parser builds only the running command's subcommands (bots/cli.py `_Commands`): every command
line must parse, print its help and fail exactly as with every command built (the command names are public
interface, DESIGN.md §8)."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator

import pytest

from bots.cli import _parser


def outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = vars(parser.parse_args(argv))
        except SystemExit as exit:
            result = ("exit", exit.code)
    return result, out.getvalue(), err.getvalue()


def paths(parser: argparse.ArgumentParser, above: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand, as the words that name it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*above, name)
                yield from paths(sub, (*above, name))


EVERY = sorted(set(paths(_parser([]))))
ARGVS = [
    [],
    ["--help"],
    ["-v"],
    ["frobnicate"],
    ["-h", "tickets"],
    *([*path, *tail] for path in EVERY for tail in ([], ["--help"], ["--json"], ["1", "2"], ["-v"])),
    *(["-v", *path] for path in EVERY),
    *(["--", *path] for path in EVERY),
]


def test_there_are_subcommands_to_leave_out() -> None:
    assert len(EVERY) > 30 and ("tickets", "list") in EVERY and ("apikey", "create") in EVERY


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_a_command_line_parses_as_with_every_command_built(argv: list[str]) -> None:
    assert outcome(_parser(argv), argv) == outcome(_parser([]), argv)
