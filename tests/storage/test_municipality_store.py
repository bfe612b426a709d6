"""The configuration in the database: save/load round trip, idempotent loads, retired rows kept inactive."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.demo import DEMO_CONFIG_PATH
from core.municipality import Municipality
from core.municipality_file import load_toml_file
from storage.municipality_store import load_municipality, save_municipality
from storage.tables import CategoryRow, MunicipalityRow, OrganisationRow


@pytest.fixture(scope="module")
def demo() -> Municipality:
    return load_toml_file(DEMO_CONFIG_PATH)


def save(engine: Engine, municipality: Municipality) -> bool:
    with Session(engine) as session, session.begin():
        return save_municipality(session, municipality)


def load(engine: Engine) -> Municipality | None:
    with Session(engine) as session:
        return load_municipality(session)


def test_empty_database_has_no_configuration(sql_engine: Engine) -> None:
    assert load(sql_engine) is None


def test_save_then_load_is_equal(sql_engine: Engine, demo: Municipality) -> None:
    assert save(sql_engine, demo) is True
    loaded = load(sql_engine)
    assert loaded == demo
    assert loaded.checksum() == demo.checksum()
    with Session(sql_engine) as session:
        row = session.get(MunicipalityRow, 1)
        assert row.code == "irkutsk"
        assert row.checksum == demo.checksum()
        categories = session.scalars(select(CategoryRow).order_by(CategoryRow.position)).all()
        assert [c.code for c in categories] == [c.code for c in demo.categories]
        pothole = session.get(CategoryRow, "roads.pothole")
        assert (pothole.parent_code, pothole.name_ru, pothole.name_en) == (
            "roads",
            "Яма на дороге",
            "Pothole",
        )
        assert pothole.sla_days == demo.category("roads.pothole").sla_days
        dispatch = session.get(OrganisationRow, "dispatch")
        assert dispatch.kind == "dispatch"
        assert all(r.active for r in session.scalars(select(OrganisationRow)))


def test_saving_the_same_configuration_twice_does_nothing(sql_engine: Engine, demo: Municipality) -> None:
    assert save(sql_engine, demo) is True
    with Session(sql_engine) as session:
        first_loaded_at = session.get(MunicipalityRow, 1).loaded_at
    assert save(sql_engine, demo) is False
    assert save(sql_engine, load_toml_file(DEMO_CONFIG_PATH)) is False  # a fresh parse of the same file
    with Session(sql_engine) as session:
        assert session.get(MunicipalityRow, 1).loaded_at == first_loaded_at
        assert session.scalars(select(MunicipalityRow)).all() == [session.get(MunicipalityRow, 1)]


def test_removed_category_and_organisation_become_inactive(sql_engine: Engine, demo: Municipality) -> None:
    assert save(sql_engine, demo) is True
    smaller = dataclasses.replace(
        demo,
        categories=tuple(c for c in demo.categories if c.code != "other" and c.parent != "other"),
        organisations=tuple(o for o in demo.organisations if o.code != "lighting"),
    )
    assert save(sql_engine, smaller) is True
    assert load(sql_engine) == smaller
    with Session(sql_engine) as session:
        inactive = set(session.scalars(select(CategoryRow.code).where(CategoryRow.active.is_(False))))
        assert inactive == {"other", "other.stray_animals", "other.graffiti", "other.misc"}
        assert session.get(CategoryRow, "roads").active is True
        assert session.get(OrganisationRow, "lighting").active is False
        assert session.get(OrganisationRow, "rt_neo").active is True
        # never deleted: tickets keep referring to them
        assert session.get(CategoryRow, "other.misc") is not None

    # bringing them back reactivates the same rows
    assert save(sql_engine, demo) is True
    with Session(sql_engine) as session:
        assert session.get(CategoryRow, "other").active is True
        assert session.get(OrganisationRow, "lighting").active is True


def test_changed_names_and_sla_are_updated(sql_engine: Engine, demo: Municipality) -> None:
    save(sql_engine, demo)
    roads = demo.category("roads")
    renamed = dataclasses.replace(roads, names={"ru": "Автодороги"}, sla_days=12)
    changed = dataclasses.replace(
        demo, categories=tuple(renamed if c.code == "roads" else c for c in demo.categories)
    )
    when = datetime(2026, 10, 15, 1, 2, 3, tzinfo=UTC)
    with Session(sql_engine) as session, session.begin():
        assert save_municipality(session, changed, now=when) is True
    with Session(sql_engine) as session:
        row = session.get(CategoryRow, "roads")
        assert (row.name_ru, row.name_en, row.sla_days) == ("Автодороги", "Автодороги", 12)
        stored = session.get(MunicipalityRow, 1).loaded_at
        assert stored.replace(tzinfo=stored.tzinfo or UTC) == when
    assert load(sql_engine) == changed
