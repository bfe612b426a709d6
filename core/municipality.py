"""The municipality's configuration: categories, organisations and their service areas, the city boundary.

One TOML file is the public format (DESIGN.md §5); `parse_toml` validates it and reports the line or field of
every mistake; the parsed model is what the engine, routing and deadlines read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# NOTE: skeleton — parsing, validation and geometry are filled in by the configuration work.


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    names: dict[str, str]
    sla_days: int
    parent: str | None = None
    nearby_radius_m: int = 50

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["ru"]


@dataclass(frozen=True, slots=True)
class Organisation:
    code: str
    names: dict[str, str]
    kind: str  # "organisation" | "dispatch"
    categories: frozenset[str] = frozenset()
    area: dict[str, Any] | None = None  # GeoJSON geometry (Polygon / MultiPolygon) or None = whole city

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["ru"]


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str
    names: dict[str, str]
    timezone: str
    boundary: dict[str, Any]
    categories: tuple[Category, ...]
    organisations: tuple[Organisation, ...]
    dispatch: str
    extra: dict[str, Any] = field(default_factory=dict)

    def top_categories(self) -> list[Category]:
        return [c for c in self.categories if c.parent is None]

    def subcategories(self, parent: str) -> list[Category]:
        return [c for c in self.categories if c.parent == parent]

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def organisation(self, code: str | None) -> Organisation | None:
        return next((o for o in self.organisations if o.code == code), None)
