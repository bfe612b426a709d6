"""The two wire formats of GeoReport v2: JSON (arrays at the top level) and XML (UTF-8, the spec's element
names), and the spec's error document in both. Datetimes are ISO 8601 in the city's time zone with its
offset (`2026-12-01T10:00:00+08:00`)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

FORMATS = ("json", "xml")
Item = Mapping[str, Any]
"""One object: scalar values, or a nested list of objects given as (container, element, items)."""


class Nested:
    """A list inside an object: `<formats><format>…</format></formats>` in XML, a plain array in JSON."""

    def __init__(self, element: str, items: Sequence[Any]) -> None:
        self.element = element
        self.items = items


def iso(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")


def _json_default(value: Any) -> Any:
    """json.dumps calls this only for what it cannot write itself: the nested lists."""
    if isinstance(value, Nested):
        return list(value.items)
    raise TypeError(f"not JSON: {type(value).__name__}")


NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 cannot carry at all: a ticket stored before text was normalised must not make the
whole document unreadable."""


def _xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return NOT_XML.sub("", str(value))


def _xml_fill(parent: ET.Element, item: Item) -> None:
    for name, value in item.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, Nested):
            for sub in value.items:
                node = ET.SubElement(child, value.element)
                if isinstance(sub, Mapping):
                    _xml_fill(node, sub)
                else:
                    node.text = _xml_text(sub)
        else:
            child.text = _xml_text(value)


def xml_bytes(root: str, element: str | None, items: Sequence[Item] | Item) -> bytes:
    top = ET.Element(root)
    if element is None:
        _xml_fill(top, items)  # type: ignore[arg-type]
    else:
        for item in items:  # type: ignore[union-attr]
            _xml_fill(ET.SubElement(top, element), item)  # type: ignore[arg-type]
    return ET.tostring(top, encoding="utf-8", xml_declaration=True)


def respond(
    fmt: str,
    root: str,
    element: str | None,
    items: Sequence[Item] | Item,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """`element=None`: `items` is one object, the document itself (discovery)."""
    if fmt == "xml":
        return web.Response(
            body=xml_bytes(root, element, items),
            status=status,
            content_type="text/xml",
            charset="utf-8",
            headers=headers,
        )
    doc = items if element is None else list(items)  # type: ignore[arg-type]
    return web.Response(
        body=json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode(
            "utf-8"
        ),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def errors(
    fmt: str, problems: Sequence[tuple[int, str]], headers: Mapping[str, str] | None = None
) -> web.Response:
    """The spec's error document: `[{"code", "description"}]` / `<errors><error>…`; the HTTP status is the
    first problem's code."""
    items = [{"code": code, "description": description} for code, description in problems]
    return respond(
        fmt if fmt in FORMATS else "json", "errors", "error", items, status=problems[0][0], headers=headers
    )
