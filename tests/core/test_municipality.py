"""Municipality configuration: the demo loads, the document round-trips, mistakes are named precisely."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from core.demo import DEMO_CONFIG_PATH
from core.municipality import ConfigError, Municipality
from core.municipality_file import load_toml_file, parse_toml


def polygon(*ring: tuple[float, float], kind: str = "Polygon") -> str:
    """A GeoJSON polygon as a TOML inline table; positions are (lon, lat)."""
    positions = ", ".join(f"[{lon}, {lat}]" for lon, lat in ring)
    return f"{{ type = '{kind}', coordinates = [[{positions}]] }}"


SQUARE = polygon((104.1, 52.2), (104.5, 52.2), (104.5, 52.4), (104.1, 52.4), (104.1, 52.2))

MINIMAL = f"""
[municipality]
code = "town"
name_ru = "Город"
timezone = "Asia/Irkutsk"
dispatch = "dispatch"
boundary = {SQUARE}

[[categories]]
code = "roads"
name_ru = "Дороги"
name_en = "Roads"
sla_days = 10

  [[categories.subcategories]]
  code = "roads.pothole"
  name_ru = "Яма"
  sla_days = 5

  [[categories.subcategories]]
  code = "roads.sign"
  name_ru = "Знак"

[[categories]]
code = "other"
name_ru = "Прочее"
sla_days = 7
nearby_radius_m = 120

[[organisations]]
code = "dispatch"
name_ru = "Диспетчерская"
kind = "dispatch"

[[organisations]]
code = "roads_dept"
name_ru = "Дорожная служба"
name_en = "Roads department"
categories = ["roads"]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_toml(text)
    return str(info.value).splitlines()


@pytest.fixture(scope="module")
def demo() -> Municipality:
    return load_toml_file(DEMO_CONFIG_PATH)


def test_demo_loads_with_enough_categories_and_organisations(demo: Municipality) -> None:
    assert demo.code == "irkutsk"
    assert demo.timezone == "Asia/Irkutsk"
    assert demo.name("ru") == "Иркутск"
    tops = demo.top_categories()
    assert len(tops) >= 8
    for top in tops:
        assert 2 <= len(demo.subcategories(top.code)) <= 4
    assert len(demo.organisations) >= 4
    assert demo.organisation(demo.dispatch).kind == "dispatch"
    assert all(len(c.code) <= 40 for c in demo.categories)
    assert all(c.names["ru"] and c.name("en") for c in demo.categories)


def test_demo_boundary(demo: Municipality) -> None:
    assert demo.contains(52.2870, 104.2810)  # ул. Ленина
    assert demo.contains(52.2450, 104.2650)  # Академгородок
    assert not demo.contains(55.75, 37.62)  # Москва
    assert not demo.contains(float("nan"), 104.28)


def test_minimal_config_parses_with_inheritance_and_defaults() -> None:
    m = parse_toml(MINIMAL)
    assert [c.code for c in m.categories] == ["roads", "roads.pothole", "roads.sign", "other"]
    sign = m.category("roads.sign")
    assert sign.parent == "roads"
    assert sign.sla_days == 10  # inherited
    assert m.category("roads.pothole").sla_days == 5  # overridden
    assert m.category("roads").nearby_radius_m == 50  # default
    assert m.category("other").nearby_radius_m == 120
    assert sign.name("en") == "Знак"  # en falls back to ru
    assert m.organisation("roads_dept").categories == frozenset({"roads"})
    assert m.organisation("roads_dept").area is None
    assert m.organisation("roads_dept").kind == "organisation"
    # integer coordinates are normalised to floats so documents compare equal after JSON
    assert m.boundary["coordinates"][0][0] == [104.1, 52.2]


def test_document_round_trip_is_exact(demo: Municipality) -> None:
    document = demo.to_document()
    stored = json.loads(json.dumps(document))  # what the database gives back
    again = Municipality.from_document(stored)
    assert again == demo
    assert again.to_document() == document
    assert again.checksum() == demo.checksum()


def test_checksum_changes_with_content(demo: Municipality) -> None:
    changed = dataclasses.replace(demo, dispatch="lighting")
    assert changed.checksum() != demo.checksum()
    assert len(demo.checksum()) == 64


def test_prepared_geometry_cache_is_not_shared_by_replace(demo: Municipality) -> None:
    assert demo.contains(52.2870, 104.2810)
    far = {"type": "Polygon", "coordinates": [[[37.0, 55.0], [38.0, 55.0], [38.0, 56.0], [37.0, 55.0]]]}
    moved = dataclasses.replace(demo, boundary=far)
    assert not moved.contains(52.2870, 104.2810)
    assert demo.contains(52.2870, 104.2810)


def test_from_document_rejects_unknown_format() -> None:
    with pytest.raises(ConfigError, match="format"):
        Municipality.from_document({"format": 99})


def test_toml_syntax_error_names_the_line() -> None:
    text = MINIMAL.replace('name_en = "Roads"', 'name_en "Roads"')
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s == 'name_en "Roads"')
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line}, column ")
    assert "TOML" in problem


def test_unknown_category_in_organisation() -> None:
    text = MINIMAL.replace('categories = ["roads"]', 'categories = ["roads", "roadz"]')
    assert problems_of(text) == ['organisations[1].categories[1]: unknown category "roadz"']


def test_duplicate_code() -> None:
    text = MINIMAL.replace('code = "roads.sign"', 'code = "roads.pothole"')
    (problem,) = problems_of(text)
    assert problem.startswith('categories[0].subcategories[1].code: duplicate code "roads.pothole"')
    assert "categories[0].subcategories[0]" in problem


def test_duplicate_organisation_code() -> None:
    text = MINIMAL.replace('code = "roads_dept"', 'code = "dispatch"')
    (problem,) = problems_of(text)
    assert problem.startswith('organisations[1].code: duplicate code "dispatch"')


@pytest.mark.parametrize("value", ["-3", "0", "2.5", '"10"', "true"])
def test_bad_sla(value: str) -> None:
    text = MINIMAL.replace("sla_days = 7", f"sla_days = {value}")
    (problem,) = problems_of(text)
    assert problem.startswith("categories[1].sla_days: must be a positive integer")


def test_bad_sla_of_subcategory() -> None:
    text = MINIMAL.replace("sla_days = 5", "sla_days = -1")
    assert problems_of(text) == [
        "categories[0].subcategories[0].sla_days: must be a positive integer, got -1"
    ]


def test_bad_polygon_self_intersecting() -> None:
    bowtie = polygon((104.2, 52.2), (104.3, 52.3), (104.3, 52.2), (104.2, 52.3), (104.2, 52.2))
    text = MINIMAL.replace('categories = ["roads"]', f'categories = ["roads"]\narea = {bowtie}')
    (problem,) = problems_of(text)
    assert problem.startswith("organisations[1].area: not a valid GeoJSON polygon: Self-intersection")


@pytest.mark.parametrize(
    ("area", "detail"),
    [
        ("{ type = 'Point', coordinates = [104.2, 52.2] }", "type must be Polygon or MultiPolygon"),
        (polygon((104.2, 52.2), (104.3, 52.3), (104.3, 52.2)), "4 positions"),
        (polygon((104.2, 52.2), (104.3, 52.3), (104.3, 52.2), (104.2, 52.25)), "not closed"),
        (polygon((52.2, 104.2), (52.3, 104.3), (52.3, 104.2), (52.2, 104.2)), "not a [lon, lat] position"),
        (
            "{ type = 'MultiPolygon', coordinates = [[[[104.2, 52.2], [104.3, 52.3], [104.2, 52.2]]]] }",
            "coordinates[0][0]: a ring needs at least 4 positions",
        ),
        ('"everywhere"', "expected a table"),
    ],
)
def test_bad_polygons(area: str, detail: str) -> None:
    text = MINIMAL.replace('categories = ["roads"]', f'categories = ["roads"]\narea = {area}')
    (problem,) = problems_of(text)
    assert problem.startswith("organisations[1].area: not a valid GeoJSON polygon: ")
    assert detail in problem


def test_area_with_swapped_coordinates_outside_the_city() -> None:
    # lat/lon swapped for a place whose swap is still a valid position: it lands far from the city
    swapped = polygon((52.2, 14.2), (52.3, 14.3), (52.3, 14.2), (52.2, 14.2))
    text = MINIMAL.replace('categories = ["roads"]', f'categories = ["roads"]\narea = {swapped}')
    (problem,) = problems_of(text)
    assert problem.startswith("organisations[1].area: lies entirely outside the city boundary")


def test_boundary_must_be_a_polygon() -> None:
    line = "{ type = 'LineString', coordinates = [[104.1, 52.2], [104.5, 52.4]] }"
    text = MINIMAL.replace(f"boundary = {SQUARE}", f"boundary = {line}")
    (problem,) = problems_of(text)
    assert problem.startswith("municipality.boundary: not a valid GeoJSON polygon")


def test_missing_dispatch_organisation() -> None:
    text = MINIMAL.replace('dispatch = "dispatch"', 'dispatch = "control_room"')
    assert problems_of(text) == ['municipality.dispatch: no organisation with code "control_room"']


def test_dispatch_must_have_dispatch_kind() -> None:
    text = MINIMAL.replace('dispatch = "dispatch"', 'dispatch = "roads_dept"')
    assert problems_of(text) == [
        'municipality.dispatch: organisation "roads_dept" has kind "organisation", expected "dispatch"'
    ]


def test_invalid_timezone() -> None:
    text = MINIMAL.replace("Asia/Irkutsk", "Asia/Irkutsk_City")
    (problem,) = problems_of(text)
    assert problem.startswith('municipality.timezone: unknown time zone "Asia/Irkutsk_City"')


def test_russian_name_is_required_and_unknown_keys_are_reported() -> None:
    text = MINIMAL.replace('name_ru = "Прочее"', 'nmae_ru = "Прочее"')
    assert problems_of(text) == [
        "categories[1].nmae_ru: unknown key",
        "categories[1].name_ru: required (the Russian name; name_en is optional)",
    ]


def test_code_rules() -> None:
    text = MINIMAL.replace('code = "other"', 'code = "Other stuff"')
    (problem,) = problems_of(text)
    assert problem.startswith("categories[1].code: ")
    long_code = "x" * 41
    (problem,) = problems_of(MINIMAL.replace('code = "other"', f'code = "{long_code}"'))
    assert problem == "categories[1].code: must be at most 40 characters, got 41"


def test_several_problems_reported_at_once() -> None:
    text = (
        MINIMAL.replace("sla_days = 7", "sla_days = 0")
        .replace('categories = ["roads"]', 'categories = ["nope"]')
        .replace('dispatch = "dispatch"', 'dispatch = "nobody"')
    )
    assert problems_of(text) == [
        "categories[1].sla_days: must be a positive integer, got 0",
        'organisations[1].categories[0]: unknown category "nope"',
        'municipality.dispatch: no organisation with code "nobody"',
    ]


def test_organisation_listing_a_broken_category_is_not_told_it_is_unknown() -> None:
    text = MINIMAL.replace("sla_days = 10", "sla_days = -10")
    assert problems_of(text) == ["categories[0].sla_days: must be a positive integer, got -10"]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as info:
        load_toml_file(missing)
    assert str(info.value) == f"{missing}: file not found"


def test_file_problems_are_prefixed_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "city.toml"
    path.write_text(MINIMAL.replace("sla_days = 7", "sla_days = -7"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_toml_file(path)
    assert str(info.value) == f"{path}: categories[1].sla_days: must be a positive integer, got -7"
    assert info.value.problems == ("categories[1].sla_days: must be a positive integer, got -7",)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_the_privacy_policy_link_is_optional_checked_and_kept_in_the_document(demo: Municipality) -> None:
    """The link shown with the personal-data notice (issue 16): absent → "", an http(s) URL or refused."""
    assert parse_toml(MINIMAL).privacy_policy_url == ""
    assert "privacy_policy_url" not in parse_toml(MINIMAL).to_document()  # older checksums stay
    with_link = MINIMAL.replace(
        'dispatch = "dispatch"', 'dispatch = "dispatch"\nprivacy_policy_url = "https://city.example/pd"', 1
    )
    city = parse_toml(with_link)
    assert city.privacy_policy_url == "https://city.example/pd"
    assert Municipality.from_document(city.to_document()) == city
    for bad in ('"javascript:alert(1)"', '"https://x y"', "42"):
        wrong = MINIMAL.replace(
            'dispatch = "dispatch"', f'dispatch = "dispatch"\nprivacy_policy_url = {bad}', 1
        )
        assert any(p.startswith("municipality.privacy_policy_url:") for p in problems_of(wrong)), bad
    assert demo.privacy_policy_url.startswith("https://")
