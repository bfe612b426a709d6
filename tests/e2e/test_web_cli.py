"""The web's command line: `otklik staff invite --role admin`, `otklik web link PERSON` and
`otklik tickets export`, as an operator runs them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from pathlib import Path

import aiohttp

from tests.conftest import OTKLIK

REPORT = "/start\n1\n1\n1\n/loc 52.2870 104.2810\nГлубокая яма у остановки, машины объезжают.\n1\n1\n"


def test_an_admin_is_invited_and_gets_a_sign_in_link_and_a_resident_cannot(otklik) -> None:  # type: ignore[no-untyped-def]
    code = json.loads(otklik("staff", "invite", "dispatch", "--role", "admin", "--json"))["code"]
    assert "/web/login/" in otklik("chat", "--user", "boss", "--name", "Мэр", stdin=f"/staff {code}\n/web\n")
    listed = json.loads(otklik("staff", "list", "--json"))
    assert [(m["role"], m["chat"]) for m in listed] == [("admin", "console:boss")]
    printed = otklik("web", "link", "console:boss")
    assert re.search(r"http://\S+/web/login/[A-Za-z0-9_-]{43}", printed), printed
    assert "no active staff member" in otklik("web", "link", "console:resident", expect=2)


def test_tickets_export_parses_back(otklik) -> None:  # type: ignore[no-untyped-def]
    otklik("chat", "--user", "r1", stdin=REPORT)
    rows = list(csv.DictReader(io.StringIO(otklik("tickets", "export", "--format", "csv").lstrip("\ufeff"))))
    found = [(r["number"], r["status"], r["organisation"]) for r in rows]
    assert found == [("1", "assigned", "roads_service")]
    doc = json.loads(otklik("tickets", "export", "--format", "geojson", "--category", "roads"))
    assert [f["properties"]["number"] for f in doc["features"]] == [1]
    assert doc["features"][0]["geometry"]["coordinates"] == [104.281, 52.287]
    empty = json.loads(otklik("tickets", "export", "--format", "geojson", "--status", "closed"))
    assert empty == {"type": "FeatureCollection", "features": []}
    assert "unknown filter" in otklik("tickets", "export", "--format", "csv", "--category", "nope", expect=2)


async def test_otklik_run_on_the_console_serves_the_web_and_says_where(
    env: dict[str, str], tmp_path: Path, otklik: object
) -> None:
    """`bash scripts/run.sh` with no token opens the console channel; the city's web is served beside it.
    (`otklik` upgrades a PostgreSQL database first: `run` refuses an older schema there.)"""
    process = await asyncio.create_subprocess_exec(
        OTKLIK, "run", env=env, cwd=tmp_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None and process.stdin is not None
        said = ""
        while "web at " not in said:
            line = await asyncio.wait_for(process.stderr.readline(), 60)
            assert line, said
            said += line.decode()
        base = re.search(r"web at (http://\S+)/web", said)
        assert base, said
        async with aiohttp.ClientSession() as session:
            async with session.get(base.group(1) + "/healthz") as health:
                assert health.status == 200
            async with session.get(base.group(1) + "/web") as web:
                assert web.status == 401 and "/web" in await web.text()
        process.stdin.close()  # end of input ends the console, and the web with it
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
