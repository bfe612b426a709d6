"""What `GET /metrics` reports, in Prometheus' text format through the official client library (DESIGN.md
§12): updates handled per channel and how long they took, the outbox's depth, age and dead letters, geocoder
errors, and whether this worker leads.

Counters and the histogram live in the process (each worker reports its own; Prometheus sums them). The
outbox figures are the database's, the same on every worker, read when scraped."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from core.geo import Bounds, Place
from core.messages import Incoming
from core.ports import Geocoder

__all__ = ["CONTENT_TYPE_LATEST", "MeteredGeocoder", "exposition", "observe_update", "record_cluster"]

UPDATES = Counter("otklik_updates_handled", "Updates handled by the engine", ["channel", "outcome"])
LATENCY = Histogram(
    "otklik_update_handling_seconds",
    "Seconds from an update reaching the engine to its replies (geocoding included)",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GEOCODER_ERRORS = Counter("otklik_geocoder_errors", "Geocoder calls that failed", ["call"])
OUTBOX_DEPTH = Gauge("otklik_outbox_pending", "Outbox messages not yet delivered")
OUTBOX_AGE = Gauge("otklik_outbox_oldest_pending_age_seconds", "Age of the oldest undelivered outbox message")
DEAD_LETTERS = Gauge("otklik_outbox_dead", "Outbox messages given up on (otklik outbox list --failed)")
LEADER = Gauge("otklik_leader", "1 while this worker runs the leader-only jobs (polling, timers)")


def observe_update(incoming: Incoming, seconds: float, ok: bool) -> None:
    """The engine's observer (core/engine.py)."""
    channel = incoming.chat.channel
    UPDATES.labels(channel, "ok" if ok else "error").inc()
    LATENCY.labels(channel).observe(seconds)


def record_outbox(counts: dict[str, int], oldest: datetime | None, now: datetime) -> None:
    OUTBOX_DEPTH.set(counts.get("pending", 0))
    DEAD_LETTERS.set(counts.get("dead", 0))
    OUTBOX_AGE.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)


def record_cluster(leader: bool) -> None:
    LEADER.set(1 if leader else 0)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


class MeteredGeocoder:
    """A `Geocoder` that counts its inner geocoder's failures (the failure itself still propagates)."""

    def __init__(self, inner: Geocoder) -> None:
        self.inner = inner

    async def reverse(self, lat: float, lon: float, language: str) -> Place | None:
        try:
            return await self.inner.reverse(lat, lon, language)
        except Exception:
            GEOCODER_ERRORS.labels("reverse").inc()
            raise

    async def search(self, query: str, language: str, bounds: Bounds, limit: int) -> list[Place]:
        try:
            return await self.inner.search(query, language, bounds, limit)
        except Exception:
            GEOCODER_ERRORS.labels("search").inc()
            raise
