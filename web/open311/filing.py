"""Filing a request (`POST requests`): the bounded body, every field checked at once, then the place — a pin
checked against the city's boundary, or a typed address geocoded inside it like a resident's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aiohttp import web

import web.open311.parsing as parsing
from core import open311
from core.engine import Engine
from core.geo import Lookup, run_lookup
from core.municipality import Municipality
from core.ports import ApiKey, Submission
from core.reporting import Report
from web.open311.parsing import Problems, clean, reject

ADDRESS_MAX = 300


async def read_body(request: web.Request) -> bytes:
    """A form body of at most `MAX_BODY` bytes: anything else is refused before it is read whole."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise reject(400, "body", max=parsing.MAX_BODY)
    if request.content_length is not None and request.content_length > parsing.MAX_BODY:
        raise reject(400, "body", max=parsing.MAX_BODY)
    body = await request.content.read(parsing.MAX_BODY + 1)
    if len(body) > parsing.MAX_BODY:
        raise reject(400, "body", max=parsing.MAX_BODY)
    return body


def validate(
    m: Municipality, fields: Mapping[str, str], key: ApiKey, lang: str, problems: Problems
) -> tuple[Report, Submission]:
    """The report and what comes with it; every wrong field is added to `problems`."""
    code = fields.get("service_code", "").strip()
    service = open311.service_of(m, code) if code else None
    if not code:
        problems.add(400, "service_code")
    elif service is None:
        problems.add(400, "service_filter", code=code[:64])
    description = clean(fields.get("description", ""))
    if not description:
        problems.add(400, "description")
    elif len(description) > parsing.DESCRIPTION_MAX:
        problems.add(400, "too_long", field="description", max=parsing.DESCRIPTION_MAX)
    has_lat, has_lon = "lat" in fields, "long" in fields
    lat = parsing.coordinate("lat", fields["lat"], 90, problems) if has_lat else None
    lon = parsing.coordinate("long", fields["long"], 180, problems) if has_lon else None
    address = clean(fields.get("address_string", ""))
    if has_lat != has_lon or (not has_lat and not address):
        problems.add(400, "location")
    if len(address) > ADDRESS_MAX:
        problems.add(400, "too_long", field="address_string", max=ADDRESS_MAX)
    if lat is not None and lon is not None and not m.contains(lat, lon):
        problems.add(400, "outside", city=m.name(lang))
    media_url = fields.get("media_url", "").strip()
    if media_url and not parsing.public_link(media_url):
        problems.add(400, "media_url")
    person = {}
    for name, most in parsing.PERSON_LIMITS.items():
        value = clean(fields.get(name, ""))
        if len(value) > most:
            problems.add(400, "too_long", field=name, max=most)
        elif (value and name == "email" and not parsing.EMAIL.fullmatch(value)) or (
            value and name == "phone" and not parsing.PHONE.fullmatch(value)
        ):
            problems.add(400, "invalid", field=name)
        person[name] = value
    category, subcategory = service or ("", None)
    report = Report(
        category=category,
        subcategory=subcategory,
        lat=lat,
        lon=lon,
        address=address,
        location_source="pin" if lat is not None else "typed",
        description=description,
        photos=(),
        author=open311.author(key),
        language=lang,
    )
    return report, Submission(number=0, key_name=key.name, media_url=media_url, **person)


async def locate(engine: Engine, report: Report, lang: str, city: str) -> Report:
    """A pin (already checked against the boundary) gets its address when the partner sent none; a typed
    address is geocoded inside the city like a resident's, and kept unverified — for the dispatcher to place —
    when the geocoder cannot say. Addresses are asked for in the city's language `city`."""
    m = engine.municipality
    if report.lat is not None and report.lon is not None:
        if report.address or engine.geocoder is None:
            return report
        lookup = Lookup("open311", "reverse", city, lat=report.lat, lon=report.lon)
        found = await run_lookup(engine.geocoder, lookup, m, engine.geocode_timeout)
        return replace(report, address=found.places[0].address) if found.ok and found.places else report
    lookup = Lookup("open311", "search", city, query=report.address)
    found = await run_lookup(engine.geocoder, lookup, m, engine.geocode_timeout)
    if not found.ok:
        return replace(report, location_source="typed_unverified")
    inside = [p for p in found.places if m.contains(p.lat, p.lon)]
    if not inside:
        raise reject(400, "not_found", city=m.name(lang))
    place = inside[0]
    return replace(report, lat=place.lat, lon=place.lon, address=place.address, location_source="geocoded")
