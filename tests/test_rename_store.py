"""rename_store.py rewrites calls of the old `Store` to the unit of work's ports, and only once."""

from __future__ import annotations

from rename_store import rewrite

OLD = """from core.geo import Geocoder, Lookup
from core.ports import Store


def job(store: Store) -> None:
    store.subscribe(1, chat, "ru", now)
    ctx.store.enqueue(reply, now)
    photos.store(data)
"""


def test_old_calls_become_port_calls_and_a_second_run_changes_nothing() -> None:
    new = rewrite(OLD)
    assert "store.supporters.add(1, chat" in new
    assert "ctx.store.outbox.enqueue(reply" in new
    assert "photos.store(data)" in new  # not a unit of work
    assert "def job(store: UnitOfWork)" in new and "from core.ports import UnitOfWork" in new
    assert "from core.geo import Lookup\nfrom core.ports import Geocoder" in new
    assert rewrite(new) == new
