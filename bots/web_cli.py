"""`otklik web link PERSON` (a one-time sign-in link to the city's web, for someone who cannot reach the bot
just now) and `otklik tickets export --format csv|geojson [filters]` (the web's export, to stdout).

    otklik web link PERSON [--minutes 15]
    otklik tickets export --format csv|geojson [--status S]… [--category C]… [--organisation O]…
                          [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--overdue]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bots.reports import shown
from core import weblogin
from core.domain.tickets import Status
from core.export import BATCH, FORMATS, Writer

if TYPE_CHECKING:
    from bots.app import App


def add_web_commands(sub: Any) -> None:
    web = sub.add_parser("web", help="the city's web").add_subparsers(dest="web_command", required=True)
    link = web.add_parser("link", help="a one-time sign-in link for a staff member, dispatcher or admin")
    link.add_argument("person", metavar="PERSON", help="the id from `staff list`, or channel:id")
    link.add_argument("--minutes", type=int, default=int(weblogin.LINK_TTL.total_seconds() // 60))


def add_export_command(tickets: Any) -> None:
    export = tickets.add_parser(
        "export", help="the filtered ticket list as CSV or GeoJSON, streamed to stdout"
    )
    export.add_argument("--format", choices=FORMATS, required=True)
    export.add_argument("--status", action="append", default=[], choices=[s.value for s in Status])
    export.add_argument("--category", action="append", default=[])
    export.add_argument("--organisation", action="append", default=[])
    export.add_argument("--from", dest="start", default="", metavar="YYYY-MM-DD")
    export.add_argument("--to", dest="end", default="", metavar="YYYY-MM-DD")
    export.add_argument("--overdue", action="store_true")


def web_link(app: App, args: argparse.Namespace) -> int:
    person = args.person.strip()
    if not 1 <= args.minutes <= 24 * 60:
        print("otklik: --minutes must be between 1 and 1440", file=sys.stderr)
        return 2
    now = datetime.now(UTC)

    def make(store: Any) -> Any:
        found = [m for m in store.staff.find(person[:200]) if m.removed_at is None]
        if len(found) != 1:
            return len(found)
        return found[0], weblogin.new_link(
            store, found[0], app.engine.web_url, now, timedelta(minutes=args.minutes)
        )

    made = app.db.run_sync(make)
    if isinstance(made, int):
        problem = "no active staff member" if made == 0 else "several staff members match"
        print(f"otklik: {problem} {person!r}; see `otklik staff list`", file=sys.stderr)
        return 2
    member, link = made
    until = shown(link.expires_at, _tz(app))
    who = f"{member.name} ({member.organisation}, {member.role})"
    print(f"One-time sign-in link for {who}, valid until {until}:")
    print(link.url)
    return 0


def export(app: App, args: argparse.Namespace) -> int:
    from multidict import MultiDict  # the web's filters, parsed as the web does: only for this command

    from web.dashboard import filters

    municipality = app.municipality
    unknown = [c for c in args.category if municipality.category(c) is None]
    unknown += [o for o in args.organisation if municipality.organisation(o) is None]
    for day in (args.start, args.end):
        if day and filters.parse_day(day) is None:
            unknown.append(day)
    if unknown:
        print(f"otklik: unknown filter value(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    query: MultiDict[str] = MultiDict(
        [("status", s) for s in args.status]
        + [("category", c) for c in args.category]
        + [("organisation", o) for o in args.organisation]
        + [("from", args.start), ("to", args.end), ("overdue", "1" if args.overdue else "")]
    )
    now = datetime.now(UTC)
    where = filters.parse(query, municipality, (), now).where
    writer = Writer(args.format, municipality, now)
    out = sys.stdout
    out.reconfigure(encoding="utf-8")  # type: ignore[attr-defined]
    out.write(writer.head())
    before: int | None = None
    while True:
        batch = app.db.run_sync(lambda store, cursor=before: store.ticket_search.find(where, BATCH, cursor))
        out.write(writer.chunk(batch))
        if len(batch) < BATCH:
            break
        before = batch[-1].number
    out.write(writer.tail())
    out.flush()
    return 0


def _tz(app: App) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(app.municipality.timezone)
