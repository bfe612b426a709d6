"""The statistics the database aggregates (storage/web_store.py `stats`, used by the dashboard and
`otklik stats`) are exactly the row-by-row reference's (tests/stats_reference.py), on a varied history:
staff and resident responses, second resolutions after a reopen, forged and zero-padded ratings, tickets
without an organisation or a deadline, microsecond durations, filters, and weeks across a DST change."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.engine import Engine
from core.ports import TicketFilter
from core.stats import document
from storage.tables import ticket_events
from storage.tables import tickets as ticket_rows
from tests.stats_reference import compute, rows, weekly
from web.dashboard import charts

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
RATINGS = ("1", "2", "3", "4", "5", "05", "12", "12345", "²", "", 4, 0)


def seed(engine: Engine, count: int = 400) -> None:
    rng = random.Random(11)
    m = engine.municipality
    subs = [(c.parent, c.code) for c in m.categories if c.parent]
    orgs = [o.code for o in m.organisations if o.kind != "dispatch"] + [None]
    # Around Berlin's DST change of 2026-03-29 01:00 UTC and Monday midnights, and the last three years.
    special = [
        datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 21, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 29, 16, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 15, 59, 59, tzinfo=UTC),
    ]
    tickets, events = [], []
    for number in range(1, count + 1):
        category, sub = rng.choice(subs)
        created = (
            special[number - 1]
            if number <= len(special)
            else NOW
            - timedelta(seconds=rng.randrange(3 * 365 * 86400), microseconds=rng.randrange(1_000_000))
        )
        status = rng.choice(("new", "assigned", "in_progress", "reopened", "resolved", "closed", "rejected"))
        deadline = created + timedelta(days=rng.choice((1, 5, 10))) if rng.random() < 0.8 else None
        tickets.append(
            {
                "number": number,
                "category_code": category,
                "subcategory_code": sub,
                "lat": 52.28,
                "lon": 104.28,
                "address": "",
                "location_source": "pin",
                "description": "x",
                "author_channel": "console",
                "author_chat_id": f"r{number}",
                "author_user_id": "",
                "language": "ru",
                "organisation_code": rng.choice(orgs),
                "status": status,
                "created_at": created,
                "updated_at": created,
                "deadline": deadline,
                "overdue_notified": False,
            }
        )
        at = created
        for _ in range(rng.randrange(0, 7)):
            at += timedelta(hours=rng.uniform(0.01, 200), microseconds=rng.randrange(1_000_000))
            action = rng.choice(("take", "comment", "resolve", "reject", "reopen", "rate", "close", "assign"))
            actor = rng.choice(("staff:1", "staff:22", "resident:console:r", "system"))
            data: dict[str, Any] = {"rating": rng.choice(RATINGS)} if action == "rate" else {}
            events.append(
                {"ticket_number": number, "action": action, "at": at, "actor": actor, "from_status": None,
                 "to_status": status, "comment": "", "photos": [], "data": data}
            )  # fmt: skip

    def insert(store: Any) -> None:
        store.conn.execute(ticket_rows.insert(), tickets)
        store.conn.execute(ticket_events.insert(), events)

    engine.db.run_sync(insert)


def test_the_sql_statistics_are_the_reference_figures_for_any_filter_and_zone(engine: Engine) -> None:
    seed(engine)
    m = engine.municipality
    filters = [
        TicketFilter(),
        TicketFilter(created_from=NOW - timedelta(days=90)),
        TicketFilter(statuses=("closed", "resolved"), categories=("roads",)),
        TicketFilter(organisations=(m.organisations[1].code,), overdue_at=NOW),
        TicketFilter(created_from=NOW + timedelta(days=1)),  # nothing at all
    ]

    def check(store: Any) -> int:
        tickets, events = rows(store)
        compared = 0
        for where in filters:
            chosen = {r.number for r in store.ticket_search.find(where, 10_000)}
            mine = [t for t in tickets if t["number"] in chosen]
            theirs = [e for e in events if e["number"] in chosen]
            for zone in ("Asia/Irkutsk", "Europe/Berlin", "America/New_York"):
                figures = store.ticket_search.stats(where, NOW, zone)
                assert document(figures) == compute(mine, theirs, NOW), (where, zone)
                assert charts.weekly(figures) == weekly(mine, theirs, ZoneInfo(zone)), (where, zone)
            compared += len(mine)
        return compared

    assert engine.db.run_sync(check) > 400
    doc = engine.db.run_sync(lambda store: document(store.ticket_search.stats(TicketFilter(), NOW, "UTC")))
    assert doc["rating"]["count"] > 10 and doc["reopen_rate"]["of"] > 10 and doc["overdue"] > 10


def test_stats_ignore_a_forged_rating_stored_before_the_fix(engine: Engine) -> None:
    """A "12" (or "12345", "²") that a forged button stored before the rating was checked does not lift the
    city's mean rating in SQL either; a zero-padded "05" is a 5 as the parser reads it."""
    tickets = [
        {
            "number": n,
            "category_code": "roads",
            "lat": None,
            "lon": None,
            "address": "",
            "location_source": "text",
            "description": "x",
            "author_channel": "console",
            "author_chat_id": "r",
            "author_user_id": "",
            "language": "ru",
            "organisation_code": "roads_service",
            "status": "closed",
            "created_at": NOW,
            "updated_at": NOW,
            "deadline": None,
            "overdue_notified": False,
        }
        for n in (1, 2, 3, 4, 5)
    ]
    ratings = {1: "12", 2: "4", 3: "12345", 4: "²", 5: "05"}
    events = [
        {"ticket_number": n, "action": "rate", "at": NOW, "actor": "resident:test:1", "from_status": "closed",
         "to_status": "closed", "comment": "", "photos": [], "data": {"rating": r}}
        for n, r in ratings.items()
    ]  # fmt: skip

    def run(store: Any) -> dict[str, Any]:
        store.conn.execute(ticket_rows.insert(), tickets)
        store.conn.execute(ticket_events.insert(), events)
        return document(store.ticket_search.stats(TicketFilter(), NOW, "UTC"))

    assert engine.db.run_sync(run)["rating"] == {"count": 2, "mean": 4.5}
