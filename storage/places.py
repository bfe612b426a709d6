"""Places and "me too": open tickets near a point, and residents supporting a ticket (the `Supporters` port).

Nearby search must stay fast at a million tickets: the index `(category_code, status, lat, lon)` narrows the
search to one category's open tickets (one range per open status: the closed ones a spot gathers over the
years are never read) and a latitude band, longitude is checked inside the index, and only the few rows left
in the bounding box are read — nearest first by a flat approximation — and measured on the ellipsoid
(`core.geo.distance_m`; bench/nearby.py). SQLite is told to use that index (`INDEXED BY`): once its tables
are analysed it takes the map's (lat, lon) index for a spot with many tickets, which reads them all.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, insert, select

from core.domain.tickets import CLOSED_STATUSES, Status
from core.geo import bounding_box, distance_m
from core.messages import ChatRef
from core.ports import NearbyTicket
from storage import pg_session
from storage.repository import Repository
from storage.tables import supporters, tickets

OPEN_STATUSES = tuple(s.value for s in Status if s not in CLOSED_STATUSES)
SCAN_LIMIT = 64
"""Rows read from the bounding box at most (nearest first): plenty for the few tickets a resident is shown."""
STOP_BEYOND = 1.03
"""The flat ranking of the rows may differ from the geodesic one by ~1 % (the ellipsoid), so once a row is 3 %
beyond the radius, no later row can be within it: the exact distance is measured for a few rows only."""

SUPPORTERS_OF = (
    select(supporters.c.channel, supporters.c.chat_id, supporters.c.user_id, supporters.c.language)
    .where(supporters.c.ticket_number == bindparam("number"))
    .order_by(supporters.c.created_at, supporters.c.channel, supporters.c.chat_id)
)
RAW_NEARBY = f"""
SELECT number, lat, lon FROM tickets INDEXED BY ix_tickets_category_code_status_lat_lon
WHERE category_code = :category AND lat BETWEEN :south AND :north AND lon BETWEEN :west AND :east
  AND subcategory_code IS :sub AND status IN ({", ".join(f"'{s}'" for s in OPEN_STATUSES)})
ORDER BY (lat - :lat0) * (lat - :lat0) + (lon - :lon0) * (lon - :lon0) * :shrink
LIMIT {SCAN_LIMIT}
"""
PG_NEARBY = f"""
SELECT number, lat, lon FROM tickets
WHERE category_code = %s AND lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s
  AND subcategory_code IS NOT DISTINCT FROM %s AND status IN ({", ".join(f"'{s}'" for s in OPEN_STATUSES)})
ORDER BY (lat - %s) * (lat - %s) + (lon - %s) * (lon - %s) * %s
LIMIT {SCAN_LIMIT}
"""
"""PostgreSQL: planned with its values every time (`pg_session.query`). Prepared, as psycopg does with a
statement after five uses, the server went over to a generic plan after five more, which does not know the
bounding box and took ~9 ms instead of ~1 (issue 17)."""
DETAILS = select(
    tickets.c.number, tickets.c.address, tickets.c.description, tickets.c.status, tickets.c.created_at
).where(tickets.c.number.in_(bindparam("numbers", expanding=True)))
SUPPORTER_COUNTS = (
    select(supporters.c.ticket_number, func.count())
    .where(supporters.c.ticket_number.in_(bindparam("numbers", expanding=True)))
    .group_by(supporters.c.ticket_number)
)


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def nearby_tickets(
    repo: Repository,
    category: str,
    subcategory: str | None,
    lat: float,
    lon: float,
    radius_m: float,
    limit: int,
) -> list[NearbyTicket]:
    """Open tickets of exactly this (sub)category within `radius_m` metres, nearest first."""
    box = bounding_box(lat, lon, radius_m)
    params = {
        "category": category,
        "sub": subcategory,
        "south": box.south,
        "north": box.north,
        "west": box.west,
        "east": box.east,
        "lat0": lat,
        "lon0": lon,
        "shrink": math.cos(math.radians(lat)) ** 2,
    }
    if repo.is_sqlite:  # the raw cursor: SQLAlchemy's execution costs ten times SQLite's work here
        rows = repo.raw.execute(RAW_NEARBY, params).fetchall()
    else:
        box_values = (category, box.south, box.north, box.west, box.east, subcategory, lat, lat, lon, lon)
        rows = pg_session.query(repo.conn, PG_NEARBY, (*box_values, params["shrink"])).fetchall()
    near: list[tuple[float, int]] = []
    for number, row_lat, row_lon in rows:  # nearest first (flat ranking, within ~1 % of the geodesic one)
        metres = distance_m(lat, lon, row_lat, row_lon)
        if metres > radius_m * STOP_BEYOND:
            break  # every row after this one is farther still
        if metres <= radius_m:
            near.append((metres, number))
            if len(near) == limit:
                break
    if not near:
        return []
    near.sort()
    numbers = [number for _, number in near]
    details = {row.number: row for row in repo.conn.execute(DETAILS, {"numbers": numbers})}
    counts = supporter_counts(repo, numbers)
    return [
        NearbyTicket(
            number=number,
            distance_m=metres,
            address=details[number].address,
            description=details[number].description,
            status=Status(details[number].status),
            created_at=_utc(details[number].created_at),
            supporters=counts.get(number, 0),
        )
        for metres, number in near
    ]


def supporter_counts(repo: Repository, numbers: list[int]) -> dict[int, int]:
    if not numbers:
        return {}
    return {
        int(number): int(count) for number, count in repo.conn.execute(SUPPORTER_COUNTS, {"numbers": numbers})
    }


class SqlSupporters(Repository):
    """Residents who joined a ticket ("me too"): the `Supporters` port."""

    def includes(self, number: int, chat: ChatRef) -> bool:
        return (
            self.conn.execute(
                select(supporters.c.ticket_number).where(
                    supporters.c.ticket_number == number,
                    supporters.c.channel == chat.channel,
                    supporters.c.chat_id == chat.chat_id,
                )
            ).first()
            is not None
        )

    def add(self, number: int, chat: ChatRef, language: str, at: datetime) -> bool:
        """Idempotent; the chat's dialog row lock serialises a chat's own updates, so check-then-insert is
        race-free here."""
        if self.includes(number, chat):
            return False
        self.conn.execute(
            insert(supporters).values(
                ticket_number=number,
                channel=chat.channel,
                chat_id=chat.chat_id,
                user_id=chat.user_id,
                language=language,
                created_at=at,
            )
        )
        return True

    def of(self, number: int) -> list[ChatRef]:
        return [chat for chat, _language in self.with_languages(number)]

    def with_languages(self, number: int) -> list[tuple[ChatRef, str]]:
        """The supporters with the language each reported in, oldest first: to word their notifications."""
        return [
            (ChatRef(row.channel, row.chat_id, row.user_id), row.language)
            for row in self.conn.execute(SUPPORTERS_OF, {"number": number})
        ]
