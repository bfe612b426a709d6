"""The console channel in a real terminal (a pseudo-terminal): a greeting, one Ctrl-C (or SIGTERM) stops it
cleanly, a restart mid-dialog re-shows the question, and log lines stay out of the conversation."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.demo import DEMO_CONFIG_PATH
from core.municipality_file import load_toml_file
from core.texts import t
from tests.conftest import OTKLIK

PROMPT = b"> "
"""The console's prompt, as the terminal shows it."""


class Terminal:
    """A command in a pseudo-terminal of its own, its controlling terminal: ^C is SIGINT, as for a person."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once
            try:
                os.chdir(cwd)
                os.execve(args[0], args, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.status: int | None = None

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    def _pump(self, timeout: float) -> bool:
        """Read what is there within `timeout`; False once the terminal is closed (the command exited)."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: no process has the terminal open any more
            return False
        self.output += chunk
        return bool(chunk)

    def expect(self, wanted: bytes, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.output:
            left = deadline - time.monotonic()
            assert left > 0 and self._pump(min(left, 0.2)), f"no {wanted!r} in:\n{self.text}"

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 10.0) -> int:
        """The exit status (a signal's death as -N); fails if the command is still running after `timeout`."""
        deadline = time.monotonic() + timeout
        while self.status is None and time.monotonic() < deadline:
            self._pump(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        assert self.status is not None, f"still running {timeout}s later:\n{self.text}"
        while self._pump(0.01):  # whatever it printed last
            pass
        return self.status

    def close(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@contextlib.contextmanager
def terminal(env: dict[str, str], cwd: Path, *args: str) -> Iterator[Terminal]:
    term = Terminal([OTKLIK, *args], env, cwd)
    try:
        yield term
    finally:
        term.close()


def greeting(language: str) -> str:
    city = load_toml_file(DEMO_CONFIG_PATH).name(language)
    return t(language, "console.greeting", city=city).splitlines()[0]


@pytest.fixture
def ready(otklik, env: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The environment of a database ready to talk (on PostgreSQL: upgraded and configured by `otklik`)."""
    return env


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("command", [("chat", "--user", "tty-resident"), ("run",)])
def test_one_ctrl_c_stops_the_console_cleanly(
    ready: dict[str, str], tmp_path: Path, command: tuple[str]
) -> None:
    with terminal(ready, tmp_path, *command) as term:
        term.expect(PROMPT)
        term.send(b"\x03")
        assert term.wait(10) == 0
    assert "Traceback" not in term.text and "KeyboardInterrupt" not in term.text
    assert_gone(term.pid)


def test_sigterm_stops_the_console_cleanly(ready: dict[str, str], tmp_path: Path) -> None:
    with terminal(ready, tmp_path, "chat", "--user", "tty-resident") as term:
        term.expect(PROMPT)
        os.kill(term.pid, signal.SIGTERM)
        assert term.wait(10) == 0
    assert "Traceback" not in term.text
    assert_gone(term.pid)


def test_ctrl_c_stops_the_console_mid_dialog(ready: dict[str, str], tmp_path: Path) -> None:
    with terminal(ready, tmp_path, "chat", "--user", "tty-resident") as term:
        term.expect(PROMPT)
        term.send(b"1\n")  # New report
        term.expect(t("ru", "report.category.ask").encode())
        term.expect(PROMPT)
        term.send(b"\x03")
        assert term.wait(10) == 0
    assert "Traceback" not in term.text


@pytest.mark.parametrize("language", ["ru", "en"])
def test_console_greets_with_a_hint_in_the_users_language(
    ready: dict[str, str], tmp_path: Path, language: str
) -> None:
    with terminal(ready, tmp_path, "chat", "--user", "tty-resident", "--lang", language) as term:
        term.expect(PROMPT)
        term.send(b"\x04")  # Ctrl-D: end of input
        assert term.wait(10) == 0
    before_prompt = term.text.split("> ")[0]
    assert greeting(language) in before_prompt and "/help" in before_prompt
    assert t(language, "menu.prompt") in before_prompt  # the menu's buttons, numbered, before the first "> "


def test_console_restart_mid_dialog_shows_the_question_so_numbers_work_at_once(otklik) -> None:  # type: ignore[no-untyped-def]
    otklik("chat", "--user", "r5", stdin="/start\n1\n")  # New report: the category question is pending
    out = otklik("chat", "--user", "r5", stdin="1\n")  # a new process: "1" is the first category at once
    subcategory = t("ru", "report.subcategory.ask", category="Дороги")
    assert out.index(t("ru", "report.category.ask")) < out.index(subcategory)


def _chat_on_the_embedded_database(
    env: dict[str, str], tmp_path: Path, *args: str, **stdin: Any
) -> subprocess.CompletedProcess[str]:
    """`otklik [args] chat …` on the embedded SQLite database (migrated at start), its output captured."""
    env = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [OTKLIK, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=90, **stdin
    )


def test_console_log_lines_go_to_a_file_not_into_the_chat(env: dict[str, str], tmp_path: Path) -> None:
    """With -v, the embedded database's upgrade and seeding log INFO lines: none may land in the terminal."""
    done = _chat_on_the_embedded_database(env, tmp_path, "-v", "chat", "--user", "r6", input="/start\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert " INFO " not in done.stdout and t("ru", "menu.prompt") in done.stdout
    log = (Path(env["DATA_DIR"]) / "otklik.log").read_text(encoding="utf-8")
    assert "demo configuration" in log


def test_console_with_input_from_dev_null_ends_cleanly(env: dict[str, str], tmp_path: Path) -> None:
    """Regression: with no input (`< /dev/null`, a service manager's default) the console crashed with
    PermissionError: the event loop cannot watch /dev/null. Now it reads the empty input and ends."""
    with open(os.devnull) as nothing:
        done = _chat_on_the_embedded_database(env, tmp_path, "chat", "--user", "r7", stdin=nothing)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
