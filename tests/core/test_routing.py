"""Routing: category × place → organisation, dispatch when nothing applies."""

from __future__ import annotations

import pytest

from core.demo import DEMO_CONFIG_PATH
from core.domain.routing import route
from core.municipality import Category, Municipality, Organisation
from core.municipality_file import load_toml_file


def box(west: float, south: float, east: float, north: float) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def org(
    code: str, categories: set[str], area: dict | None = None, kind: str = "organisation"
) -> Organisation:
    return Organisation(code, {"ru": code}, kind, frozenset(categories), area)


def town(*organisations: Organisation) -> Municipality:
    """A 10×10 town (lon 0–10, lat 40–50) with roads (two subcategories) and parks."""
    categories = (
        Category("roads", {"ru": "Дороги"}, 10),
        Category("roads.pothole", {"ru": "Яма"}, 5, parent="roads"),
        Category("roads.light", {"ru": "Светофор"}, 1, parent="roads"),
        Category("parks", {"ru": "Парки"}, 10),
    )
    return Municipality(
        code="town",
        names={"ru": "Город"},
        timezone="Europe/Moscow",
        boundary=box(0, 40, 10, 50),
        categories=categories,
        organisations=(org("dispatch", set(), kind="dispatch"), *organisations),
        dispatch="dispatch",
    )


def test_point_inside_an_area() -> None:
    m = town(org("west", {"roads"}, box(0, 40, 5, 50)), org("east", {"roads"}, box(5, 40, 10, 50)))
    assert route(m, "roads", 45, 2) == "west"
    assert route(m, "roads", 45, 8) == "east"


def test_outside_every_area_goes_to_dispatch() -> None:
    m = town(org("west", {"roads"}, box(0, 40, 5, 50)))
    assert route(m, "roads", 45, 8) == "dispatch"
    assert route(m, "roads", 10, 10) == "dispatch"


def test_overlapping_areas_the_smallest_wins() -> None:
    m = town(
        org("a_city", {"roads"}),
        org("b_district", {"roads"}, box(0, 40, 5, 50)),
        org("c_quarter", {"roads"}, box(1, 41, 3, 43)),
    )
    assert route(m, "roads", 42, 2) == "c_quarter"
    assert route(m, "roads", 45, 2) == "b_district"
    assert route(m, "roads", 45, 8) == "a_city"


def test_equal_overlapping_areas_tie_by_code() -> None:
    m = town(org("zeta", {"roads"}, box(0, 40, 5, 50)), org("alpha", {"roads"}, box(0, 40, 5, 50)))
    assert route(m, "roads", 45, 2) == "alpha"


def test_whole_city_means_the_city_boundary() -> None:
    m = town(org("city", {"roads"}))
    assert route(m, "roads", 45, 5) == "city"
    assert route(m, "roads", 55.75, 37.62) == "dispatch"


def test_category_not_covered_goes_to_dispatch() -> None:
    m = town(org("roads_dept", {"roads"}))
    assert route(m, "parks", 45, 5) == "dispatch"
    assert route(m, "no_such_category", 45, 5) == "dispatch"


def test_parent_category_covers_its_subcategories() -> None:
    m = town(org("roads_dept", {"roads"}))
    assert route(m, "roads.pothole", 45, 5) == "roads_dept"


def test_subcategory_owner_does_not_get_the_parent_category() -> None:
    m = town(org("lights", {"roads.light"}))
    assert route(m, "roads.light", 45, 5) == "lights"
    assert route(m, "roads", 45, 5) == "dispatch"
    assert route(m, "roads.pothole", 45, 5) == "dispatch"


def test_exact_subcategory_beats_parent_category() -> None:
    m = town(org("roads_dept", {"roads"}, box(4, 44, 6, 46)), org("lights", {"roads.light"}))
    assert route(m, "roads.light", 45, 5) == "lights"
    assert route(m, "roads.pothole", 45, 5) == "roads_dept"


@pytest.mark.parametrize(("lat", "lon"), [(None, None), (45.0, None), (None, 5.0), (float("nan"), 5.0)])
def test_no_point_goes_to_dispatch(lat: float | None, lon: float | None) -> None:
    m = town(org("city", {"roads"}))
    assert route(m, "roads", lat, lon) == "dispatch"


def test_point_on_a_shared_edge_is_deterministic() -> None:
    m = town(org("west", {"roads"}, box(0, 40, 5, 50)), org("east", {"roads"}, box(5, 40, 10, 50)))
    assert {route(m, "roads", 45, 5) for _ in range(3)} == {"east"}  # equal areas: ties by code


@pytest.fixture(scope="module")
def demo() -> Municipality:
    return load_toml_file(DEMO_CONFIG_PATH)


@pytest.mark.parametrize(
    ("category", "lat", "lon", "expected"),
    [
        ("yards.playground", 52.2870, 104.2810, "uk_pravoberezhnaya"),  # ул. Ленина
        ("buildings.roof", 52.2870, 104.2810, "uk_pravoberezhnaya"),
        ("yards.playground", 52.2560, 104.3300, "uk_oktyabrskaya"),  # мкр. Солнечный
        ("snow.icicles", 52.2560, 104.3300, "uk_oktyabrskaya"),
        ("yards.playground", 52.2450, 104.2650, "city_improvement"),  # Академгородок
        ("buildings.roof", 52.2450, 104.2650, "dispatch"),
        ("roads.pothole", 52.2870, 104.2810, "roads_service"),
        ("roads.traffic_light", 52.2870, 104.2810, "lighting"),
        ("waste.dump", 52.2450, 104.2650, "rt_neo"),
        ("lighting.not_working", 52.2560, 104.3300, "lighting"),
        ("other.misc", 52.2870, 104.2810, "dispatch"),
        ("roads.pothole", 55.75, 37.62, "dispatch"),  # Москва
    ],
)
def test_demo_test_points(demo: Municipality, category: str, lat: float, lon: float, expected: str) -> None:
    assert route(demo, category, lat, lon) == expected
