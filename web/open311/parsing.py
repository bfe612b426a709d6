"""Strict, bounded reading of Open311 input: the query string, the POST form, dates, numbers, links.

Every problem is collected as `(code, catalogue key, params)`, so a request with several wrong fields hears
about all of them at once (the spec's error document is a list)."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from core.normalise import normalise_text

MAX_BODY = 64 * 1024
"""A 4,000-character Cyrillic description is ≈ 24 KB form-encoded; the rest of the fields fit easily."""
MAX_FIELDS = 40
MAX_SPAN = timedelta(days=90)
MAX_PAGE_SIZE = 1000
MAX_IDS = 1000
DESCRIPTION_MAX = 4000
MEDIA_URL_MAX = 2048

POST_FIELDS = frozenset(
    {
        "api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
        "email", "device_id", "account_id", "first_name", "last_name", "phone", "description", "media_url",
        "locale",
    }
)  # fmt: skip
PERSON_LIMITS = {
    "email": 254,
    "first_name": 100,
    "last_name": 100,
    "phone": 32,
    "device_id": 64,
    "account_id": 64,
}
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}")
PHONE = re.compile(r"\+?[0-9 ()\-]{3,31}")
ID_LIST = re.compile(r"[0-9]{1,10}(,[0-9]{1,10})*")
WHOLE = re.compile(r"[0-9]{1,6}")
WHOLE_ID = re.compile(r"[0-9]{1,10}")


@dataclass
class Problems:
    """What is wrong with a request: (HTTP code, catalogue key under `open311.error`, its parameters)."""

    found: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, status: int, key: str, /, **params: Any) -> None:
        self.found.append((status, key, params))

    def __bool__(self) -> bool:
        return bool(self.found)


class Rejected(Exception):
    """The request cannot be served; `problems` say why."""

    def __init__(self, problems: Problems, headers: Mapping[str, str] | None = None, lang: str = "") -> None:
        super().__init__(problems.found[0][1] if problems.found else "")
        self.problems = problems
        self.headers = dict(headers or {})
        self.lang = lang
        """The language the request asked for in its body (a POST's `locale`), if it got that far."""


def reject(status: int, key: str, /, **params: Any) -> Rejected:
    problems = Problems()
    problems.add(status, key, **params)
    return Rejected(problems)


def single(
    pairs: Iterable[tuple[str, str]], problems: Problems, known: frozenset[str] | None
) -> dict[str, str]:
    """Name → value; a repeated name is refused, and so is an unknown one when `known` is given
    (`attribute[…]` answers are let through: no service asks any, so they are ignored)."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if known is not None and name not in known:
            if not name.startswith("attribute["):
                problems.add(400, "unknown_field", field=name[:40])
            continue
        if name in out:
            problems.add(400, "repeated_field", field=name)
            continue
        out[name] = value
    return out


def form(body: bytes, problems: Problems) -> dict[str, str]:
    """A form-encoded POST body, at most `MAX_BODY` bytes and `MAX_FIELDS` fields, UTF-8."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise reject(400, "body", max=MAX_BODY) from None
    return single(pairs, problems, POST_FIELDS)


def clean(value: str) -> str:
    return normalise_text(value).strip()


def moment(name: str, value: str, tz: ZoneInfo, problems: Problems) -> datetime | None:
    """ISO 8601 (`2026-12-01T10:00:00+08:00`, `…Z`, or a date); no offset means the city's time."""
    if len(value) > 40:
        problems.add(400, "date", field=name)
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        problems.add(400, "date", field=name)
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def window(
    params: Mapping[str, str], now: datetime, tz: ZoneInfo, problems: Problems
) -> tuple[datetime, datetime]:
    """`start_date`/`end_date` as the spec has them: by default the latest 90 days; one bound alone spans 90
    days from it; never more than 90 days."""
    start = moment("start_date", params["start_date"], tz, problems) if "start_date" in params else None
    end = moment("end_date", params["end_date"], tz, problems) if "end_date" in params else None
    if end is None:
        end = start + MAX_SPAN if start is not None else now
    if start is None:
        start = end - MAX_SPAN
    if start > end:
        problems.add(400, "date_order")
    elif end - start > MAX_SPAN:
        problems.add(400, "date_span", days=MAX_SPAN.days)
    return start, end


def page(params: Mapping[str, str], problems: Problems) -> tuple[int, int]:
    """(limit, offset) from the wiki's `page` (from 1) and `page_size` (at most 1,000, the default)."""
    size, number = params.get("page_size", str(MAX_PAGE_SIZE)), params.get("page", "1")
    if not (WHOLE.fullmatch(size) and WHOLE.fullmatch(number)) or not (
        1 <= int(size) <= MAX_PAGE_SIZE and int(number) >= 1
    ):
        problems.add(400, "page", max=MAX_PAGE_SIZE)
        return MAX_PAGE_SIZE, 0
    return int(size), (int(number) - 1) * int(size)


def ids(value: str, problems: Problems) -> tuple[int, ...]:
    compact = value.replace(" ", "")
    if not ID_LIST.fullmatch(compact) or compact.count(",") >= MAX_IDS:
        problems.add(400, "ids", max=MAX_IDS)
        return ()
    return tuple(dict.fromkeys(int(part) for part in compact.split(",")))


def coordinate(name: str, value: str, bound: float, problems: Problems) -> float | None:
    try:
        number = float(value) if len(value) <= 32 else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or abs(number) > bound:
        problems.add(400, "coordinate", field=name)
        return None
    return number


def public_link(value: str) -> bool:
    """An http(s) link to a public host: never loopback, private, link-local or reserved addresses, nor
    names that only mean this machine or its network. otklik only stores the link, but whoever follows it
    (staff, a partner's viewer) must not be pointed inside the city's network."""
    if len(value) > MEDIA_URL_MAX or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 — raises on a malformed port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return False
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan", ".home.arpa")):
        return False
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if re.fullmatch(r"[0-9.]+|0x[0-9a-f.x]+", host):  # 127.1, 2130706433, 0x7f.1: numeric forms
            return False
        return "." in host  # a bare name resolves inside the network
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
