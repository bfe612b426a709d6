"""`otklik run` on embedded defaults (the console channel) also serves the HTTP server, and says where."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from tests.conftest import OTKLIK


async def test_console_run_serves_health_and_prints_the_address(env: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    process = await asyncio.create_subprocess_exec(
        OTKLIK,
        "run",
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stderr is not None
    try:
        address = ""
        async with asyncio.timeout(30):
            while not address:
                line = (await process.stderr.readline()).decode()
                assert line, "otklik run ended before it said where it listens"
                if match := re.match(r"otklik: web at (http://\S+)/web ", line):
                    address = match.group(1)
        async with aiohttp.ClientSession() as session, session.get(address + "/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
        process.stdin.close()  # end of input ends the console, and with it the server
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
