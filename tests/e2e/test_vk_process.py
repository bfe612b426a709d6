"""`otklik run` as a real process serving VK: configured only by the environment, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from sqlalchemy import create_engine, pool

from storage.poll_positions import load_position
from tests.fakes import wait_for
from tests.fakes.vk_api import FakeVk, VkUser

CENTRE = (52.2870, 104.2810)


def _environment(vk: FakeVk, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_", "DATABASE_", "WEBHOOK_"))
    }
    env.update(
        VK_GROUP_TOKEN=vk.token,
        VK_GROUP_ID=str(vk.group_id),
        VK_API_URL=vk.api_url,
        DATA_DIR=str(data_dir),
        GEOCODER="off",
        PYTHONUNBUFFERED="1",
        **{"HTTP_PORT": "0", **extra},  # a free port unless the test serves the Callback API on its own
    )
    return env


async def _run(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    otklik = str(Path(sys.executable).with_name("otklik"))
    return await asyncio.create_subprocess_exec(
        otklik, "run", env=env, cwd=cwd, stderr=asyncio.subprocess.PIPE
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()


async def test_otklik_run_long_poll_answers_what_was_sent_while_it_was_down(
    vk: FakeVk, tmp_path: Path
) -> None:
    env = _environment(vk, tmp_path / "data")

    async def start() -> asyncio.subprocess.Process:
        polls = vk.long_polls
        process = await _run(env, tmp_path)
        await wait_for(lambda: vk.long_polls > polls or process.returncode is not None, 60, "long poll")
        assert process.returncode is None
        return process

    process = await start()
    try:
        user = VkUser(vk, 9101)
        await user.command("start")
        await user.expect("menu.welcome", "privacy.notice")  # `otklik run` asks for consent first
        await user.press("pd:consent:yes")
        await user.expect("privacy.agreed")
        await user.press("menu:new")
        await user.expect("report.category.ask")
        await _stop(process)

        await user.press("cat:roads")  # while the bot is down
        process = await start()
        await user.expect("report.subcategory.ask", timeout=10)
    finally:
        await _stop(process)
    assert saved_ts(tmp_path / "data" / "otklik.sqlite3", vk) == str(len(vk.events))
    assert not (tmp_path / "data" / "vkbottle").exists()  # the database keeps the position, not DATA_DIR
    assert not (tmp_path / ".vkbottle").exists()  # the working directory stays clean


def saved_ts(database: Path, vk: FakeVk) -> str | None:
    """The Bots Long Poll position `otklik run` saved in its database."""
    engine = create_engine(f"sqlite:///{database}", poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return load_position(conn, f"vk:{vk.group_id}")
    finally:
        engine.dispose()


async def test_otklik_run_callback_api(vk: FakeVk, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _environment(
        vk,
        tmp_path / "data",
        WEBHOOK_BASE_URL="https://otklik.example",
        WEBHOOK_SECRET="s3cret",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        VK_CONFIRMATION_CODE="abc123",
    )
    url = f"http://127.0.0.1:{port}/vk/callback"
    process = await _run(env, tmp_path)
    try:

        async def confirmed() -> bool:
            try:
                return await vk.post_callback(url, vk.confirmation_request()) == (200, "abc123")
            except OSError:
                return False

        for _ in range(600):
            if await confirmed():
                break
            assert process.returncode is None
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the callback server did not start")

        async def deliver(update: dict) -> None:
            assert await vk.post_callback(url, update, secret="s3cret") == (200, "ok")

        user = VkUser(vk, 9102, deliver=deliver)
        await user.command("start")
        await user.expect("menu.welcome", "privacy.notice")
        assert vk.long_polls == 0 and vk.calls_of("groups.getLongPollServer") == []
    finally:
        await _stop(process)
