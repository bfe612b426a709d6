"""The console's place step as a resident types it, through real `otklik chat` subprocesses: a malformed
`/loc` is refused with a hint instead of being kept as the address, and a slow geocoder is announced
("checking the address…") instead of leaving the terminal silent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from core.texts import t
from tests.conftest import OTKLIK
from tests.geo_fakes import FakeGeocoderServer, serve_fake_geocoder

TO_PLACE = ["/start", "1", "Дороги", "1"]  # New report → Roads → pothole


def test_malformed_loc_is_refused_with_a_hint_and_asked_again(otklik) -> None:  # type: ignore[no-untyped-def]
    bad = ["/loc abc def", "/loc 1000 5", "/loc", "/loc nan inf", "/loc 52.28 104.28 7", "/loc 1e1 5"]
    script = [
        *TO_PLACE,
        *bad,
        "/loc 52.2870, 104.2810",
        "Глубокая яма у остановки, машины объезжают по встречной.",
        "Без фото",
        "1",  # Submit
    ]
    out = otklik("chat", "--user", "R", stdin="\n".join(script) + "\n")
    assert out.count(t("ru", "input.bad_location")) == len(bad)
    assert out.count(t("ru", "report.location.ask")) == len(bad) + 1  # asked again after each
    assert "Обращение № 1 зарегистрировано" in out
    ticket = json.loads(otklik("tickets", "show", "1", "--json"))
    assert (ticket["lat"], ticket["lon"], ticket["address"]) == (52.287, 104.281, "")


@pytest.fixture
async def fake_geo() -> AsyncIterator[FakeGeocoderServer]:
    async for server in serve_fake_geocoder():
        yield server


async def test_a_slow_geocoder_is_announced_in_the_console(
    otklik,
    env: dict[str, str],
    tmp_path,
    fake_geo: FakeGeocoderServer,  # type: ignore[no-untyped-def]
) -> None:
    fake_geo.mode, fake_geo.delay = "slow", 1.5  # the console announces lookups that take over a second
    script = [*TO_PLACE, "/loc 52.2870 104.2810"]
    process = await asyncio.create_subprocess_exec(
        OTKLIK,
        "chat",
        "--user",
        "R",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**env, "GEOCODER": "nominatim", "NOMINATIM_URL": fake_geo.url},
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate(("\n".join(script) + "\n").encode()), 60)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    checking, answer = text.find("Проверяем адрес…"), text.find("Адрес: улица Ленина, 5. Верно?")
    assert 0 <= checking < answer, text[-800:]
