"""The configuration in the database: save/load round trip, idempotent loads, retired rows kept inactive."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, Row, select

from core.demo import DEMO_CONFIG_PATH
from core.municipality import Municipality
from core.municipality_file import load_toml_file
from storage.municipality_store import load_municipality, save_municipality
from storage.tables import categories, municipality, organisations


@pytest.fixture(scope="module")
def demo() -> Municipality:
    return load_toml_file(DEMO_CONFIG_PATH)


def save(engine: Engine, city: Municipality) -> bool:
    with engine.begin() as conn:
        return save_municipality(conn, city)


def load(engine: Engine) -> Municipality | None:
    with engine.connect() as conn:
        return load_municipality(conn)


def category(engine: Engine, code: str) -> Row | None:
    with engine.connect() as conn:
        return conn.execute(select(categories).where(categories.c.code == code)).first()


def organisation(engine: Engine, code: str) -> Row | None:
    with engine.connect() as conn:
        return conn.execute(select(organisations).where(organisations.c.code == code)).first()


def documents(engine: Engine) -> list[Row]:
    with engine.connect() as conn:
        return list(conn.execute(select(municipality)))


def test_empty_database_has_no_configuration(sql_engine: Engine) -> None:
    assert load(sql_engine) is None


def test_save_then_load_is_equal(sql_engine: Engine, demo: Municipality) -> None:
    assert save(sql_engine, demo) is True
    loaded = load(sql_engine)
    assert loaded == demo
    assert loaded.checksum() == demo.checksum()
    [row] = documents(sql_engine)
    assert (row.id, row.code, row.checksum) == (1, "irkutsk", demo.checksum())
    with sql_engine.connect() as conn:
        codes = conn.execute(select(categories.c.code).order_by(categories.c.position)).scalars().all()
        assert codes == [c.code for c in demo.categories]
        assert all(conn.execute(select(organisations.c.active)).scalars())
    pothole = category(sql_engine, "roads.pothole")
    assert (pothole.parent_code, pothole.name_ru, pothole.name_en) == ("roads", "Яма на дороге", "Pothole")
    assert pothole.sla_days == demo.category("roads.pothole").sla_days
    assert organisation(sql_engine, "dispatch").kind == "dispatch"


def test_saving_the_same_configuration_twice_does_nothing(sql_engine: Engine, demo: Municipality) -> None:
    assert save(sql_engine, demo) is True
    [first] = documents(sql_engine)
    assert save(sql_engine, demo) is False
    assert save(sql_engine, load_toml_file(DEMO_CONFIG_PATH)) is False  # a fresh parse of the same file
    assert documents(sql_engine) == [first]


def test_removed_category_and_organisation_become_inactive(sql_engine: Engine, demo: Municipality) -> None:
    assert save(sql_engine, demo) is True
    smaller = dataclasses.replace(
        demo,
        categories=tuple(c for c in demo.categories if c.code != "other" and c.parent != "other"),
        organisations=tuple(o for o in demo.organisations if o.code != "lighting"),
    )
    assert save(sql_engine, smaller) is True
    assert load(sql_engine) == smaller
    with sql_engine.connect() as conn:
        inactive = set(
            conn.execute(select(categories.c.code).where(categories.c.active.is_(False))).scalars()
        )
    assert inactive == {"other", "other.stray_animals", "other.graffiti", "other.misc"}
    assert category(sql_engine, "roads").active is True
    assert organisation(sql_engine, "lighting").active is False
    assert organisation(sql_engine, "rt_neo").active is True
    # never deleted: tickets keep referring to them
    assert category(sql_engine, "other.misc") is not None

    # bringing them back reactivates the same rows
    assert save(sql_engine, demo) is True
    assert category(sql_engine, "other").active is True
    assert organisation(sql_engine, "lighting").active is True


def test_changed_names_and_sla_are_updated(sql_engine: Engine, demo: Municipality) -> None:
    save(sql_engine, demo)
    roads = demo.category("roads")
    renamed = dataclasses.replace(roads, names={"ru": "Автодороги"}, sla_days=12)
    changed = dataclasses.replace(
        demo, categories=tuple(renamed if c.code == "roads" else c for c in demo.categories)
    )
    when = datetime(2026, 10, 15, 1, 2, 3, tzinfo=UTC)
    with sql_engine.begin() as conn:
        assert save_municipality(conn, changed, now=when) is True
    row = category(sql_engine, "roads")
    assert (row.name_ru, row.name_en, row.sla_days) == ("Автодороги", "Автодороги", 12)
    [document] = documents(sql_engine)
    stored = document.loaded_at
    assert stored.replace(tzinfo=stored.tzinfo or UTC) == when
    assert load(sql_engine) == changed
