"""The municipality's configuration: categories, organisations and their service areas, the city boundary.

This is the model that the engine, routing (core/domain/routing.py) and deadlines read. One TOML file is the
public format (DESIGN.md §5), read by core/municipality_file.py; the annotated demo file
`core/demo/irkutsk.toml` is the format's reference.

The database keeps the configuration as a JSON document (`to_document` / `from_document`), so a running bot
never needs the TOML file, and `checksum()` lets `otklik config load` skip a file that did not change.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

DOCUMENT_FORMAT = 1
"""Version of the JSON document; bump it (and teach `from_document` the old one) when its shape changes."""

DEFAULT_NEARBY_RADIUS_M = 50


class ConfigError(ValueError):
    """A configuration that cannot be used, with every problem found (one per line of the message).

    Each problem starts with where it is: `line L, column C` for TOML syntax, otherwise the field path with
    0-based indices into the TOML arrays, e.g. `categories[3].sla_days` or
    `categories[0].subcategories[1].code`. Reporting all problems at once saves an edit-load cycle per typo.
    """

    def __init__(self, problems: Iterable[str], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in self.problems))


# --------------------------------------------------------------------------------------------------- model


class Named:
    """Named in each language (`names`); Russian, which every configuration has, stands in for the rest."""

    __slots__ = ()
    names: dict[str, str]

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["ru"]


@dataclass(frozen=True, slots=True)
class Category(Named):
    code: str
    names: dict[str, str]
    sla_days: int
    parent: str | None = None
    nearby_radius_m: int = DEFAULT_NEARBY_RADIUS_M


@dataclass(frozen=True, slots=True)
class Organisation(Named):
    code: str
    names: dict[str, str]
    kind: str  # "organisation" | "dispatch"
    categories: frozenset[str] = frozenset()
    area: dict[str, Any] | None = None  # GeoJSON geometry (Polygon / MultiPolygon) or None = whole city


@dataclass(frozen=True, slots=True)
class Municipality(Named):
    code: str
    names: dict[str, str]
    timezone: str
    boundary: dict[str, Any]
    categories: tuple[Category, ...]
    organisations: tuple[Organisation, ...]
    dispatch: str
    extra: dict[str, Any] = field(default_factory=dict)
    privacy_policy_url: str = ""
    """The city's personal-data policy (152-ФЗ), linked from the notice residents agree to; "" when none."""
    # Derived data (prepared geometries, routing tables), built on first use. A per-instance dict rather
    # than a module-level cache keyed by id(): ids are reused after garbage collection, and this dies with
    # the object. `dataclasses.replace` gives the copy a fresh, empty cache, so derived data never outlives
    # its source.
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def top_categories(self) -> list[Category]:
        return [c for c in self.categories if c.parent is None]

    def subcategories(self, parent: str) -> list[Category]:
        return [c for c in self.categories if c.parent == parent]

    def category(self, code: str) -> Category | None:
        return self.memo("categories_by_code", lambda: {c.code: c for c in self.categories}).get(code)

    def organisation(self, code: str | None) -> Organisation | None:
        return self.memo("organisations_by_code", lambda: {o.code: o for o in self.organisations}).get(code)

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """Derived data cached on this instance (not part of equality); `build` may run twice under a race."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = build()
            return value

    def boundary_geometry(self) -> Any:
        """The boundary as a prepared shapely geometry (prepared: point tests are called per location)."""
        return self.memo("boundary", lambda: prepared_geometry(self.boundary))

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point lies inside the city boundary (a point on the boundary line counts as inside)."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return False
        import shapely  # here, not at the top: admin commands never test a point, and shapely loads numpy

        return bool(shapely.intersects_xy(self.boundary_geometry(), lon, lat))

    # ------------------------------------------------------------------------------------------- document

    def to_document(self) -> dict[str, Any]:
        """A JSON-serialisable, canonical form (stable order) that `from_document` turns back into an equal
        object; it is what the database stores. A copy: changing it cannot change this configuration."""
        document = {
            "format": DOCUMENT_FORMAT,
            "code": self.code,
            "names": dict(sorted(self.names.items())),
            "timezone": self.timezone,
            "boundary": self.boundary,
            "dispatch": self.dispatch,
            "categories": [
                {
                    "code": c.code,
                    "names": dict(sorted(c.names.items())),
                    "sla_days": c.sla_days,
                    "parent": c.parent,
                    "nearby_radius_m": c.nearby_radius_m,
                }
                for c in self.categories
            ],
            "organisations": [
                {
                    "code": o.code,
                    "names": dict(sorted(o.names.items())),
                    "kind": o.kind,
                    "categories": sorted(o.categories),
                    "area": o.area,
                }
                for o in self.organisations
            ],
            "extra": self.extra,
        }
        if self.privacy_policy_url:  # absent when unset: older documents keep their checksum
            document["privacy_policy_url"] = self.privacy_policy_url
        return copy.deepcopy(document)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Municipality:
        """Rebuild from `to_document` output (e.g. read back from the database). The document was validated
        when it was made, so only its shape is checked here."""
        doc = copy.deepcopy(doc)  # the geometries end up in the model: share nothing with the caller
        if not isinstance(doc, dict) or doc.get("format") != DOCUMENT_FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise ConfigError([f"format: unsupported configuration document format {found!r}"])
        try:
            return cls(
                code=doc["code"],
                names=dict(doc["names"]),
                timezone=doc["timezone"],
                boundary=doc["boundary"],
                dispatch=doc["dispatch"],
                categories=tuple(
                    Category(
                        code=c["code"],
                        names=dict(c["names"]),
                        sla_days=c["sla_days"],
                        parent=c["parent"],
                        nearby_radius_m=c["nearby_radius_m"],
                    )
                    for c in doc["categories"]
                ),
                organisations=tuple(
                    Organisation(
                        code=o["code"],
                        names=dict(o["names"]),
                        kind=o["kind"],
                        categories=frozenset(o["categories"]),
                        area=o["area"],
                    )
                    for o in doc["organisations"]
                ),
                extra=dict(doc.get("extra") or {}),
                privacy_policy_url=str(doc.get("privacy_policy_url") or ""),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError([f"document: malformed configuration document ({exc!r})"]) from exc

    def checksum(self) -> str:
        """sha256 of the canonical document: equal configurations have equal checksums."""
        canonical = json.dumps(
            self.to_document(), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def prepared_geometry(geojson: dict[str, Any]) -> Any:
    """A shapely geometry from GeoJSON, prepared so that repeated point-in-polygon tests are fast."""
    import shapely  # only where polygons are used: shapely loads numpy, which admin commands do not need
    from shapely.geometry import shape

    geometry = shape(geojson)
    shapely.prepare(geometry)
    # GEOS builds a prepared polygon's point index lazily on the first query, and shapely releases the GIL
    # during queries: build it now, in the one thread that owns the new object, so that threads sharing the
    # cached geometry later only ever read it.
    shapely.intersects_xy(geometry, *geometry.representative_point().coords[0])
    return geometry
