"""The municipality's configuration file: TOML text → the model (core/municipality.py), validated.

`parse_toml` reports the line or field of every mistake at once (saving an edit-load cycle per typo);
`load_toml_file` adds the file's path to each. The annotated demo file `core/demo/irkutsk.toml` is the
format's reference (DESIGN.md §5).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
import zoneinfo
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape

from core.municipality import (
    DEFAULT_NEARBY_RADIUS_M,
    Category,
    ConfigError,
    Municipality,
    Organisation,
    prepared_geometry,
)

CODE_MAX_LENGTH = 40
"""Codes travel inside Telegram callback data (64 bytes) together with a prefix, hence the tight limit."""

ORGANISATION_KINDS = ("organisation", "dispatch")
MAX_SLA_DAYS = 365
MAX_NEARBY_RADIUS_M = 10_000
CATEGORY_NAME_MAX = 200  # storage.tables.categories name_* length
ORGANISATION_NAME_MAX = 300  # storage.tables.organisations name_* length
POLICY_URL_MAX = 300

_CODE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_NAME_KEY_RE = re.compile(r"^name_([a-z]{2,3})$")
_TOML_POSITION_RE = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.S)


def load_toml_file(path: str | PathLike[str]) -> Municipality:
    """Read and validate a configuration file; every problem is prefixed with the file's path."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(["file not found"], source=source) from None
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror or exc}"], source=source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"byte {exc.start}: the file is not valid UTF-8"], source=source) from None
    try:
        return parse_toml(text)
    except ConfigError as exc:
        raise ConfigError(exc.problems, source=source) from None


def parse_toml(text: str) -> Municipality:
    """Parse and validate the TOML text; raises `ConfigError` listing every problem found."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_describe_toml_error(exc)]) from None
    return _Parser().municipality(raw)


def _describe_toml_error(exc: tomllib.TOMLDecodeError) -> str:
    """'line L, column C: message' — tomllib (3.11) only puts the position at the end of its message."""
    message = str(exc)
    match = _TOML_POSITION_RE.match(message)
    if not match:
        return f"TOML syntax error: {message}"
    return f"line {match['line']}, column {match['col']}: TOML syntax error: {match['msg']}"


class _Parser:
    """Turns the raw TOML tables into the model, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        # Codes of categories that were declared, even if the entry had other mistakes: organisations that
        # list them are then not also told the category is unknown.
        self.declared_categories: set[str] = set()

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # ------------------------------------------------------------------------------------------ top level

    def municipality(self, raw: dict[str, Any]) -> Municipality:
        self.unknown_keys(raw, "", {"municipality", "categories", "organisations", "extra"})
        code = names = timezone = dispatch = boundary = None
        policy = ""
        head = self.table(raw, "municipality", "municipality", required=True)
        if head is not None:  # a missing table is one problem, not one per missing key
            known = {"code", "timezone", "boundary", "dispatch", "privacy_policy_url"}
            self.unknown_keys(head, "municipality", known, names=True)
            code = self.code(head, "municipality")
            names = self.names(head, "municipality", CATEGORY_NAME_MAX)
            timezone = self.timezone(head, "municipality.timezone")
            dispatch = self.string(head, "dispatch", "municipality")
            policy = self.policy_url(head.get("privacy_policy_url"), "municipality.privacy_policy_url")
            if "boundary" in head:
                boundary = self.geometry(head["boundary"], "municipality.boundary")
            else:
                self.error(
                    "municipality.boundary", "required (a GeoJSON Polygon or MultiPolygon, [lon, lat])"
                )

        categories = self.categories(raw.get("categories"))
        organisations = self.organisations(raw.get("organisations"), categories, boundary)
        extra = self.extra(raw.get("extra"))

        if dispatch is not None:
            found = next((o for o in organisations if o.code == dispatch), None)
            if found is None:
                self.error("municipality.dispatch", f'no organisation with code "{dispatch}"')
            elif found.kind != "dispatch":
                self.error(
                    "municipality.dispatch",
                    f'organisation "{dispatch}" has kind "{found.kind}", expected "dispatch"',
                )

        if self.problems:
            raise ConfigError(self.problems)
        assert code and names and timezone and dispatch and boundary is not None  # guaranteed by no problems
        return Municipality(
            code=code,
            names=names,
            timezone=timezone,
            boundary=boundary,
            categories=tuple(categories),
            organisations=tuple(organisations),
            dispatch=dispatch,
            extra=extra,
            privacy_policy_url=policy,
        )

    def categories(self, raw: Any) -> list[Category]:
        entries = self.array_of_tables(raw, "categories")
        if not entries:
            self.error("categories", "at least one [[categories]] entry is required")
        result: list[Category] = []
        seen: dict[str, str] = {}
        for path, entry in self.each(entries, "categories"):
            if "parent" in entry:
                self.error(
                    f"{path}.parent",
                    "not supported: declare subcategories as [[categories.subcategories]] under their parent",
                )
            self.unknown_keys(
                entry, path, {"code", "sla_days", "nearby_radius_m", "subcategories", "parent"}, names=True
            )
            code = self.unique(self.code(entry, path), path, seen)
            names = self.names(entry, path, CATEGORY_NAME_MAX)
            sla = self.sla_days(entry, path, inherited=None)
            radius = self.radius(entry, path, inherited=DEFAULT_NEARBY_RADIUS_M)
            subs: list[Category] = []
            key = f"{path}.subcategories"
            for sub_path, sub in self.each(self.array_of_tables(entry.get("subcategories"), key), key):
                if "subcategories" in sub:
                    self.error(f"{sub_path}.subcategories", "subcategories cannot have subcategories")
                self.unknown_keys(
                    sub, sub_path, {"code", "sla_days", "nearby_radius_m", "subcategories"}, True
                )
                sub_code = self.unique(self.code(sub, sub_path), sub_path, seen)
                sub_names = self.names(sub, sub_path, CATEGORY_NAME_MAX)
                # 0: the parent's own sla_days is broken (already reported) — stay quiet here.
                sub_sla = self.sla_days(sub, sub_path, inherited=sla if sla is not None else 0)
                sub_radius = self.radius(sub, sub_path, inherited=radius)
                if sub_code and sub_names and sub_sla and code:
                    subs.append(Category(sub_code, sub_names, sub_sla, code, sub_radius))
            if code and names and sla:
                result.append(Category(code, names, sla, None, radius))
                result.extend(subs)
        return result

    def organisations(
        self, raw: Any, categories: list[Category], boundary: dict[str, Any] | None
    ) -> list[Organisation]:
        entries = self.array_of_tables(raw, "organisations")
        if not entries:
            self.error("organisations", "at least the dispatch organisation is required")
        known = {c.code for c in categories}
        city = prepared_geometry(boundary) if boundary is not None else None
        result: list[Organisation] = []
        seen: dict[str, str] = {}
        for path, entry in self.each(entries, "organisations"):
            self.unknown_keys(entry, path, {"code", "kind", "categories", "area"}, names=True)
            code = self.unique(self.code(entry, path), path, seen)
            names = self.names(entry, path, ORGANISATION_NAME_MAX)
            kind = entry.get("kind", "organisation")
            if kind not in ORGANISATION_KINDS:
                self.error(f"{path}.kind", f"must be one of {', '.join(ORGANISATION_KINDS)}, got {kind!r}")
                kind = None
            covered: set[str] = set()
            listed = entry.get("categories", [])
            if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
                self.error(f"{path}.categories", "must be a list of category codes")
                listed = []
            for k, cat in enumerate(listed):
                if cat not in known and cat not in self.declared_categories:
                    self.error(f"{path}.categories[{k}]", f'unknown category "{cat}"')
                covered.add(cat)
            area = None
            if "area" in entry:
                area = self.geometry(entry["area"], f"{path}.area")
                if area is not None and city is not None and not city.intersects(shape(area)):
                    self.error(
                        f"{path}.area",
                        "lies entirely outside the city boundary (positions must be [lon, lat])",
                    )
            if code and names and kind:
                result.append(Organisation(code, names, kind, frozenset(covered), area))
        return result

    def extra(self, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.error("extra", "must be a table")
            return {}
        try:
            json.dumps(raw, allow_nan=False)
        except (TypeError, ValueError):
            self.error("extra", "values must be strings, numbers, booleans, arrays or tables (no dates)")
            return {}
        return raw

    # ------------------------------------------------------------------------------------------- fields

    def unknown_keys(self, table: dict[str, Any], path: str, allowed: set[str], names: bool = False) -> None:
        for key in table:
            if key in allowed or (names and _NAME_KEY_RE.match(key)):
                continue
            self.error(f"{path}.{key}" if path else key, "unknown key")

    def table(self, parent: dict[str, Any], key: str, path: str, required: bool) -> dict[str, Any] | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.error(path, f"required: a [{key}] table")
            return None
        if not isinstance(value, dict):
            self.error(path, "must be a table")
            return None
        return value

    def array_of_tables(self, value: Any, path: str) -> list[dict[str, Any] | None]:
        """The entries, with None in place of entries that are not tables (so indices stay right)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, "must be an array of tables")
            return []
        entries: list[dict[str, Any] | None] = []
        for i, entry in enumerate(value):
            if isinstance(entry, dict):
                entries.append(entry)
            else:
                self.error(f"{path}[{i}]", "must be a table")
                entries.append(None)
        return entries

    @staticmethod
    def each(entries: list[dict[str, Any] | None], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The tables of `array_of_tables` with their paths (`path[i]`), skipping those already reported."""
        for i, entry in enumerate(entries):
            if entry is not None:
                yield f"{path}[{i}]", entry

    def string(self, table: dict[str, Any], key: str, path: str) -> str | None:
        value = table.get(key)
        if value is None:
            self.error(f"{path}.{key}", "required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(f"{path}.{key}", "must be a non-empty string")
            return None
        return value.strip()

    def code(self, table: dict[str, Any], path: str) -> str | None:
        value = self.string(table, "code", path)
        if value is None:
            return None
        if len(value) > CODE_MAX_LENGTH:
            self.error(f"{path}.code", f"must be at most {CODE_MAX_LENGTH} characters, got {len(value)}")
            return None
        if not _CODE_RE.match(value):
            self.error(
                f"{path}.code",
                f'"{value}" must be lowercase ASCII letters, digits and _ (dots separate parts), '
                "starting with a letter",
            )
            return None
        return value

    def unique(self, code: str | None, path: str, seen: dict[str, str]) -> str | None:
        if code is None:
            return None
        if code in seen:
            self.error(f"{path}.code", f'duplicate code "{code}" (first used at {seen[code]})')
            return None
        seen[code] = path
        if path.startswith("categories"):
            self.declared_categories.add(code)
        return code

    def names(self, table: dict[str, Any], path: str, max_length: int) -> dict[str, str] | None:
        names: dict[str, str] = {}
        ok = True
        for key, value in table.items():
            match = _NAME_KEY_RE.match(key)
            if not match:
                continue
            if not isinstance(value, str) or not value.strip():
                self.error(f"{path}.{key}", "must be a non-empty string")
                ok = False
            elif len(value.strip()) > max_length:
                self.error(f"{path}.{key}", f"must be at most {max_length} characters")
                ok = False
            else:
                names[match[1]] = value.strip()
        if "name_ru" not in table:
            self.error(f"{path}.name_ru", "required (the Russian name; name_en is optional)")
            return None
        return dict(sorted(names.items())) if ok else None

    def sla_days(self, table: dict[str, Any], path: str, inherited: int | None) -> int | None:
        if "sla_days" not in table:
            if inherited is None:
                self.error(f"{path}.sla_days", "required (working days to resolve)")
            return inherited
        value = table["sla_days"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error(f"{path}.sla_days", f"must be a positive integer, got {value!r}")
            return None
        if value > MAX_SLA_DAYS:
            self.error(f"{path}.sla_days", f"must be at most {MAX_SLA_DAYS} working days, got {value}")
            return None
        return value

    def radius(self, table: dict[str, Any], path: str, inherited: int) -> int:
        if "nearby_radius_m" not in table:
            return inherited
        value = table["nearby_radius_m"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NEARBY_RADIUS_M:
            self.error(
                f"{path}.nearby_radius_m",
                f"must be an integer number of metres from 0 to {MAX_NEARBY_RADIUS_M}, got {value!r}",
            )
            return inherited
        return value

    def policy_url(self, value: Any, path: str) -> str:
        """The optional link residents are shown with the personal-data notice: an absolute http(s) URL."""
        if value is None:
            return ""
        if (
            not isinstance(value, str)
            or not value.startswith(("https://", "http://"))
            or len(value) > POLICY_URL_MAX
            or not value.isprintable()
            or " " in value
        ):
            self.error(path, f"must be an http(s) URL of at most {POLICY_URL_MAX} characters")
            return ""
        return value

    def timezone(self, table: dict[str, Any], path: str) -> str | None:
        value = table.get("timezone")
        if value is None:
            self.error(path, 'required (an IANA time zone such as "Asia/Irkutsk")')
            return None
        if not isinstance(value, str):
            self.error(path, "must be a string")
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.error(path, f'unknown time zone "{value}" (expected an IANA name such as "Asia/Irkutsk")')
            return None
        return value

    def geometry(self, value: Any, path: str) -> dict[str, Any] | None:
        """A validated GeoJSON Polygon / MultiPolygon with positions normalised to [float lon, float lat]."""
        invalid = "not a valid GeoJSON polygon"
        if not isinstance(value, dict):
            self.error(path, f'{invalid}: expected a table like {{ type = "Polygon", coordinates = [...] }}')
            return None
        kind = value.get("type")
        if kind not in ("Polygon", "MultiPolygon"):
            self.error(path, f"{invalid}: type must be Polygon or MultiPolygon, got {kind!r}")
            return None
        extra_keys = sorted(set(value) - {"type", "coordinates"})
        if extra_keys:
            self.error(path, f"{invalid}: unexpected keys {', '.join(extra_keys)} (give the geometry only)")
            return None
        coordinates = value.get("coordinates")
        problems: list[str] = []
        if kind == "Polygon":
            normalised: Any = _polygon(coordinates, "coordinates", problems)
        elif not isinstance(coordinates, list) or not coordinates:
            problems.append("coordinates: must be a non-empty list of polygons")
            normalised = None
        else:
            normalised = [_polygon(p, f"coordinates[{i}]", problems) for i, p in enumerate(coordinates)]
        if problems:
            for problem in problems[:3]:
                self.error(path, f"{invalid}: {problem}")
            return None
        geojson = {"type": kind, "coordinates": normalised}
        geometry = shape(geojson)
        if not geometry.is_valid:
            self.error(path, f"{invalid}: {shapely.is_valid_reason(geometry)}")
            return None
        if geometry.area <= 0:
            self.error(path, f"{invalid}: the area is empty")
            return None
        return geojson


def _polygon(value: Any, path: str, problems: list[str]) -> list[list[list[float]]] | None:
    if not isinstance(value, list) or not value:
        problems.append(f"{path}: a polygon must be a non-empty list of rings")
        return None
    rings = []
    for r, ring in enumerate(value):
        ring_path = f"{path}[{r}]"
        if not isinstance(ring, list) or len(ring) < 4:
            problems.append(f"{ring_path}: a ring needs at least 4 positions (the last repeats the first)")
            return None
        positions = []
        for p, position in enumerate(ring):
            if (
                not isinstance(position, list)
                or len(position) not in (2, 3)
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in position)
            ):
                problems.append(f"{ring_path}[{p}]: a position must be [lon, lat]")
                return None
            lon, lat = float(position[0]), float(position[1])
            if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
                problems.append(f"{ring_path}[{p}]: [{lon}, {lat}] is not a [lon, lat] position")
                return None
            positions.append([lon, lat])
        if positions[0] != positions[-1]:
            problems.append(f"{ring_path}: the ring is not closed (the last position must repeat the first)")
            return None
        rings.append(positions)
    return rings
