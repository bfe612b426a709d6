"""Setting otklik up as a city IT person does: `.env` from the example, wrong settings, a rejected token, an
unreachable database or platform API — always a line or two that names the setting, and exit status 2."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from core.demo import DEMO_CONFIG_PATH
from tests.conftest import OTKLIK
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.vk_api import FakeVk
from tests.telegram_support import LIBRARIES

REPO = Path(__file__).resolve().parents[2]
SETUP_ERROR = 2
STARTUP_LINES = ("otklik: database ", "otklik: data folder ", "otklik: channels: ")
"""What `otklik run` says before it starts the channels (which database, folder, channels)."""


def run(env: dict[str, str], cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OTKLIK, *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=90
    )


def assert_short_setup_error(done: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit status 2 and one or two lines naming the setting — no traceback."""
    assert done.returncode == SETUP_ERROR, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith(STARTUP_LINES)]
    assert 1 <= len(lines) <= 3, done.stderr
    for name in names:
        assert name in done.stderr
    return done.stderr


@pytest.fixture
def ready(otklik, env: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The environment of a database ready to serve (on PostgreSQL: upgraded and configured by `otklik`)."""
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- item 1: `cp .env.example .env` -----------------------------------------------------------------------
def test_env_copied_from_env_example_works(env: dict[str, str], tmp_path: Path) -> None:
    """`VK_GROUP_ID=` (empty, as in the example) used to crash every command: empty means "not set"."""
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    env = {k: v for k, v in env.items() if k not in ("DATA_DIR", "GEOCODER")}  # as the example has them
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    for args in (("db", "upgrade"), ("config", "load", str(DEMO_CONFIG_PATH))):
        done = run(env, tmp_path, *args)
        assert done.returncode == 0, done.stderr
    listed = run(env, tmp_path, "tickets", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "no tickets\n"
    if "DATABASE_URL" not in env:
        assert (tmp_path / "xdg" / "otklik" / "otklik.sqlite3").is_file()


# --- item 3: wrong settings, unreachable services ---------------------------------------------------------
def test_bad_database_url_scheme_is_one_line_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    env["DATABASE_URL"] = "mysql://otklik:hunter2@db.example/otklik"
    err = assert_short_setup_error(run(env, tmp_path, "tickets", "list"), "DATABASE_URL", "postgresql://")
    assert "hunter2" not in err


def test_unreachable_postgresql_is_one_line_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    env["DATABASE_URL"] = f"postgresql://otklik:hunter2@127.0.0.1:{free_port()}/otklik"
    for args in (("db", "upgrade"), ("tickets", "list"), ("run",)):
        err = assert_short_setup_error(run(env, tmp_path, *args), "DATABASE_URL", "127.0.0.1")
        assert "hunter2" not in err and "***" in err


def test_data_dir_that_cannot_be_created_is_one_line_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    env.update(DATA_DIR=str(tmp_path / "a-file" / "data"))
    env.pop("DATABASE_URL", None)
    for args in (("db", "upgrade"), ("chat",), ("run",)):
        assert_short_setup_error(run(env, tmp_path, *args), "DATA_DIR", "a-file")


def test_bad_telegram_library_value_is_one_line_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    env.update(TELEGRAM_LIBRARY="pyrogram", HTTP_PORT="eighty")
    err = assert_short_setup_error(run(env, tmp_path, "run"), "TELEGRAM_LIBRARY", "HTTP_PORT")
    assert "aiogram" in err and "ptb" in err


async def otklik_run(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """`otklik run` that is expected to stop by itself (a setup error): its exit status and stderr."""
    process = await asyncio.create_subprocess_exec(
        OTKLIK, "run", env=env, cwd=cwd, stdin=subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _out, err = await asyncio.wait_for(process.communicate(), 90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, err.decode()


def assert_run_failed_shortly(status: int, err: str, *names: str) -> str:
    return assert_short_setup_error(subprocess.CompletedProcess(["otklik", "run"], status, "", err), *names)


@pytest.mark.parametrize("library", LIBRARIES)
async def test_telegram_401_on_getme_is_one_line_exit_2(
    ready: dict[str, str], tmp_path: Path, library: str
) -> None:
    fake = await FakeTelegram().start()
    try:
        wrong = "999999:not-the-token-telegram-knows"
        ready.update(TELEGRAM_BOT_TOKEN=wrong, TELEGRAM_API_URL=fake.url, TELEGRAM_LIBRARY=library)
        status, err = await otklik_run(ready, tmp_path)
    finally:
        await fake.stop()
    err = assert_run_failed_shortly(status, err, "TELEGRAM_BOT_TOKEN", "@BotFather")
    assert wrong not in err and "not-the-token" not in err


@pytest.mark.parametrize("library", LIBRARIES)
async def test_telegram_api_unreachable_is_one_line_exit_2(
    ready: dict[str, str], tmp_path: Path, library: str
) -> None:
    ready.update(
        TELEGRAM_BOT_TOKEN="123456:some-token",
        TELEGRAM_API_URL=f"http://127.0.0.1:{free_port()}",
        TELEGRAM_LIBRARY=library,
    )
    status, err = await otklik_run(ready, tmp_path)
    err = assert_run_failed_shortly(status, err, "TELEGRAM_API_URL")
    assert "some-token" not in err


async def test_vk_error_5_is_one_line_exit_2(ready: dict[str, str], tmp_path: Path, vk: FakeVk) -> None:
    ready.update(VK_GROUP_TOKEN="a-token-vk-does-not-know", VK_GROUP_ID=str(vk.group_id))
    ready.update(VK_API_URL=vk.api_url)
    status, err = await otklik_run(ready, tmp_path)
    err = assert_run_failed_shortly(status, err, "VK_GROUP_TOKEN", "error 5")
    assert "a-token-vk-does-not-know" not in err
