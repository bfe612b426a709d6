"""`GET /metrics`: Prometheus' text format, read back with the client library's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bots.app import App, build_app
from bots.settings import Settings
from core.messages import ChatRef, Reply
from tests.fakes import serve
from tests.support import Resident
from web.server import build_http


@pytest.fixture
def built(tmp_path: Path) -> Iterator[App]:
    """The app as `otklik run` composes it (observer and metered geocoder wired), on embedded SQLite."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", geocoder="off")  # type: ignore[call-arg]
    app = build_app(settings)
    yield app
    app.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return samples(await response.text())


async def test_metrics_count_updates_by_channel_and_show_the_outbox(built: App) -> None:
    runner, url = await serve(build_http(built))
    try:
        before = await scrape(url)
        handled = ("otklik_updates_handled_total", (("channel", "metrics-test"), ("outcome", "ok")))
        assert before.get(handled, 0.0) == 0.0
        resident = Resident(built.engine, "m1", channel="metrics-test")
        await resident.command("start")
        await resident.command("start")
        old = datetime(2020, 1, 1, tzinfo=UTC)
        await built.db.run(
            lambda uow: uow.outbox.enqueue(Reply(text="x", chat=ChatRef("metrics-test", "m2", "m2")), old)
        )
        after = await scrape(url)
    finally:
        await runner.cleanup()
    assert after[handled] == 2.0
    count = ("otklik_update_handling_seconds_count", (("channel", "metrics-test"),))
    assert after[count] - before.get(count, 0.0) == 2.0
    assert after[("otklik_outbox_pending", ())] == 1.0
    assert after[("otklik_outbox_oldest_pending_age_seconds", ())] > 365 * 24 * 3600
    assert after[("otklik_outbox_dead", ())] == 0.0
    assert after[("otklik_leader", ())] == 0.0


class BrokenGeocoder:
    """A geocoder that is down: every call fails as geopy's would."""

    async def reverse(self, lat: float, lon: float, language: str) -> None:
        raise ConnectionError("geocoder unreachable")

    async def search(self, query: str, language: str, bounds: object, limit: int) -> list[object]:
        raise ConnectionError("geocoder unreachable")


async def test_geocoder_errors_are_counted_and_still_raised() -> None:
    from bots.metrics import MeteredGeocoder, exposition

    def count(call: str) -> float:
        return samples(exposition().decode()).get(("otklik_geocoder_errors_total", (("call", call),)), 0.0)

    before = count("reverse"), count("search")
    geocoder = MeteredGeocoder(BrokenGeocoder())  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        await geocoder.reverse(52.28, 104.28, "ru")
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await geocoder.search("Ленина 5", "ru", None, 5)  # type: ignore[arg-type]
    assert (count("reverse"), count("search")) == (before[0] + 1, before[1] + 2)
