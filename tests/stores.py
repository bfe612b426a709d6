"""The engine on either implementation of the unit of work: the database, or the in-memory fake.

A test module that defines its `engine` fixture with `engine_over` runs each of its tests twice with the same
assertions — once over SQL (SQLite, or PostgreSQL when TEST_DATABASE_URL is set) and once over plain dicts —
which keeps the fake honest and shows the dialogs need nothing SQL-specific.
"""

from __future__ import annotations

import pytest

from core.engine import Engine
from core.municipality import Municipality
from tests.conftest import NOW, load_demo
from tests.fakes.memory_store import InMemoryDatabase

UNITS_OF_WORK = ("database", "memory")


def engine_over(request: pytest.FixtureRequest, demo: Municipality) -> Engine:
    """The engine with the demo city loaded, at a fixed time, over the database or the in-memory fake."""
    if request.param == "memory":
        return Engine(InMemoryDatabase(), demo, clock=lambda: NOW)
    db = request.getfixturevalue("db")
    load_demo(db, demo)
    return Engine(db, demo, clock=lambda: NOW)
