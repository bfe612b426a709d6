"""The store's part for places (issue 6): open tickets near a point, and residents supporting a ticket.

Nearby search must stay fast at a million tickets: the index `(category_code, lat, lon)` narrows the search to
one category and a latitude band, longitude is checked inside the index, and only the few rows left in the
bounding box are read — nearest first by a flat approximation — and measured exactly with geopy's geodesic
distance (bench/nearby.py).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from geopy.distance import distance
from sqlalchemy import Connection, func, insert, select

from core.domain.tickets import CLOSED_STATUSES, Status
from core.geo import bounding_box
from core.messages import ChatRef
from core.ports import NearbyTicket
from storage.tables import SubscriptionRow, TicketRow

tickets = TicketRow.__table__
subscriptions = SubscriptionRow.__table__

OPEN_STATUSES = tuple(s.value for s in Status if s not in CLOSED_STATUSES)
SCAN_LIMIT = 64
"""Rows read from the bounding box at most (nearest first): plenty for the few tickets a resident is shown."""


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class PlacesStore:
    """Mixed into `SqlStore`; needs its `conn`."""

    conn: Connection

    def nearby_tickets(
        self, category: str, subcategory: str | None, lat: float, lon: float, radius_m: float, limit: int
    ) -> list[NearbyTicket]:
        box = bounding_box(lat, lon, radius_m)
        # Squared flat distance in degrees of latitude: orders the box's rows nearest first (exact enough to
        # rank; the geodesic distance below decides who is within the radius).
        shrink = math.cos(math.radians(lat)) ** 2
        flat = (tickets.c.lat - lat) * (tickets.c.lat - lat) + (tickets.c.lon - lon) * (
            tickets.c.lon - lon
        ) * shrink
        same_kind = (
            tickets.c.subcategory_code == subcategory
            if subcategory is not None
            else tickets.c.subcategory_code.is_(None)
        )
        rows = self.conn.execute(
            select(
                tickets.c.number,
                tickets.c.lat,
                tickets.c.lon,
                tickets.c.address,
                tickets.c.description,
                tickets.c.status,
                tickets.c.created_at,
            )
            .where(
                tickets.c.category_code == category,
                tickets.c.lat.between(box.south, box.north),
                tickets.c.lon.between(box.west, box.east),
                same_kind,
                tickets.c.status.in_(OPEN_STATUSES),
            )
            .order_by(flat)
            .limit(SCAN_LIMIT)
        ).all()
        near: list[tuple[float, Any]] = []
        for row in rows:
            metres = distance((lat, lon), (row.lat, row.lon)).meters
            if metres <= radius_m:
                near.append((metres, row))
        near.sort(key=lambda item: (item[0], item[1].number))
        near = near[:limit]
        counts = self.supporter_counts([row.number for _, row in near])
        return [
            NearbyTicket(
                number=row.number,
                distance_m=metres,
                address=row.address,
                description=row.description,
                status=Status(row.status),
                created_at=_utc(row.created_at),
                supporters=counts.get(row.number, 0),
            )
            for metres, row in near
        ]

    def supporter_counts(self, numbers: list[int]) -> dict[int, int]:
        if not numbers:
            return {}
        return {
            int(number): int(count)
            for number, count in self.conn.execute(
                select(subscriptions.c.ticket_number, func.count())
                .where(subscriptions.c.ticket_number.in_(numbers))
                .group_by(subscriptions.c.ticket_number)
            )
        }

    def count_supporters(self, number: int) -> int:
        return self.supporter_counts([number]).get(number, 0)

    def is_subscribed(self, number: int, chat: ChatRef) -> bool:
        return (
            self.conn.execute(
                select(subscriptions.c.ticket_number).where(
                    subscriptions.c.ticket_number == number,
                    subscriptions.c.channel == chat.channel,
                    subscriptions.c.chat_id == chat.chat_id,
                )
            ).first()
            is not None
        )

    def subscribe(self, number: int, chat: ChatRef, language: str, at: datetime) -> bool:
        """Idempotent; the chat's dialog row lock serialises a chat's own updates, so check-then-insert is
        race-free here."""
        if self.is_subscribed(number, chat):
            return False
        self.conn.execute(
            insert(subscriptions).values(
                ticket_number=number,
                channel=chat.channel,
                chat_id=chat.chat_id,
                user_id=chat.user_id,
                language=language,
                created_at=at,
            )
        )
        return True

    def subscribers_of(self, number: int) -> list[ChatRef]:
        return [
            ChatRef(row.channel, row.chat_id, row.user_id)
            for row in self.conn.execute(
                select(subscriptions.c.channel, subscriptions.c.chat_id, subscriptions.c.user_id)
                .where(subscriptions.c.ticket_number == number)
                .order_by(subscriptions.c.created_at, subscriptions.c.channel, subscriptions.c.chat_id)
            )
        ]

    def subscriber_languages(self, number: int) -> dict[ChatRef, str]:
        """The language each supporter reported in, to word their notifications."""
        return {
            ChatRef(row.channel, row.chat_id, row.user_id): row.language
            for row in self.conn.execute(
                select(
                    subscriptions.c.channel,
                    subscriptions.c.chat_id,
                    subscriptions.c.user_id,
                    subscriptions.c.language,
                ).where(subscriptions.c.ticket_number == number)
            )
        }
