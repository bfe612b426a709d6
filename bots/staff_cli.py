"""`otklik staff …` and `otklik outbox …`: inviting staff and looking after message delivery.

otklik staff invite ORG [--role staff|dispatcher] [--hours 72] [--json]   a one-time code for /staff CODE
otklik staff list [--json]                                                who works through the bot
otklik outbox flush [--linger SECONDS]     deliver what is due now through every available channel sender
otklik outbox list [--failed] [--limit N] [--json]   recent messages: pending, sent, dead (or only dead)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bots.app import App, build_app
from bots.background import with_console
from bots.reports import iso, shown
from bots.runner import Channel, configured_channels
from bots.settings import Settings
from core.staffing import ROLES, InviteError, create_invite
from storage.outbox import FlushReport, OutboxWorker, list_entries


def add_commands(sub: Any) -> None:
    staff = sub.add_parser("staff", help="staff and dispatchers working through the bot").add_subparsers(
        dest="staff_command", required=True
    )
    invite = staff.add_parser("invite", help="a one-time code that makes its sender staff of ORG")
    invite.add_argument("organisation", metavar="ORG", help="organisation code from the configuration")
    invite.add_argument("--role", choices=ROLES, help="default: dispatcher in the dispatch service")
    invite.add_argument(
        "--hours", type=_hours, default=72.0, help=f"how long the code stays valid (72; at most {MAX_HOURS})"
    )
    invite.add_argument("--json", action="store_true")
    listing = staff.add_parser("list", help="staff members and dispatchers")
    listing.add_argument("--json", action="store_true")

    outbox = sub.add_parser("outbox", help="messages waiting for delivery").add_subparsers(
        dest="outbox_command", required=True
    )
    flush = outbox.add_parser("flush", help="deliver everything due now, then exit")
    flush.add_argument("--linger", type=float, default=2.0, help="also wait for rows due within this many s")
    listed = outbox.add_parser("list", help="recent messages, newest first: pending, sent and dead-lettered")
    listed.add_argument("--failed", action="store_true", help="only messages given up after failures")
    listed.add_argument("--limit", type=int, default=100)
    listed.add_argument("--json", action="store_true")


MAX_HOURS = 24 * 30
"""An invitation code is a key to staff access: a month is already generous."""


def _hours(text: str) -> float:
    """`--hours`: a code that has already expired, or that never does, is refused before anything is made."""
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from None
    if not 0 < hours <= MAX_HOURS:  # NaN fails this too
        raise argparse.ArgumentTypeError(
            f"{text} hours: a code must stay valid for more than 0 and at most {MAX_HOURS} hours (30 days)"
        )
    return hours


def run(args: argparse.Namespace, settings: Settings) -> int:
    app = build_app(settings)
    try:
        if args.command == "staff":
            return _invite(app, args) if args.staff_command == "invite" else _staff_list(app, args.json)
        if args.outbox_command == "flush":
            return _flush(app, args.linger)
        return _outbox_list(app, args)
    finally:
        app.close()


def _invite(app: App, args: argparse.Namespace) -> int:
    municipality = app.engine.municipality
    now = datetime.now(UTC)
    try:
        made = app.db.run_sync(
            lambda store: create_invite(
                store, municipality, args.organisation, args.role, now, timedelta(hours=args.hours)
            )
        )
    except InviteError as exc:
        print(f"otklik: {exc}", file=sys.stderr)
        return 2
    org = municipality.organisation(made.organisation)
    if args.json:
        doc = {
            "code": made.code,
            "organisation": made.organisation,
            "role": made.role,
            "expires_at": iso(made.expires_at, ZoneInfo(municipality.timezone)),
            "command": f"/staff {made.code}",
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    until = shown(made.expires_at, ZoneInfo(municipality.timezone))
    print(
        f"One-time {made.role} code for {made.organisation} ({org.name('ru') if org else ''}), "
        f"valid until {until} ({municipality.timezone}).\nThe person sends this to the bot:"
    )
    print(f"/staff {made.code}")
    return 0


def _staff_list(app: App, as_json: bool) -> int:
    members = app.db.run_sync(lambda store: store.all_staff())
    rows = [
        {"id": m.id, "role": m.role, "organisation": m.organisation, "chat": m.chat.key, "name": m.name}
        for m in members
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        print(f"{r['id']:<5} {r['role']:<11} {r['organisation']:<24} {r['chat']:<28} {r['name']}")
    if not rows:
        print("no staff yet: otklik staff invite ORG")
    return 0


def _flush(app: App, linger: float) -> int:
    channels = configured_channels(app)
    senders = with_console(app, {channel.name: channel.sender for channel in channels})
    report = asyncio.run(_flush_async(app, senders, channels, linger))
    print(
        f"sent {report.sent}, retrying later {report.retrying}, dead {report.dead}, "
        f"still pending {report.pending} (channels: {', '.join(sorted(senders))})"
    )
    return 0


async def _flush_async(
    app: App, senders: dict[str, Any], channels: list[Channel], linger: float
) -> FlushReport:
    try:
        return await OutboxWorker(app.db, senders).flush(linger=linger)
    finally:
        for channel in channels:  # built, never started: let them close their HTTP sessions
            with contextlib.suppress(Exception):
                await channel.stop()


def _outbox_list(app: App, args: argparse.Namespace) -> int:
    tz = ZoneInfo(app.engine.municipality.timezone)
    statuses = ("dead",) if args.failed else ()  # () = every status
    entries = app.db.run_sync(lambda store: list_entries(store, statuses, args.limit))
    if args.json:
        doc = [
            {
                "id": e.id,
                "status": e.status,
                "recipient": e.chat.key,
                "attempts": e.attempts,
                "created_at": iso(e.created_at, tz),
                "next_attempt_at": iso(e.next_attempt_at, tz),
                "sent_at": iso(e.sent_at, tz),
                "last_error": e.last_error,
                "text": e.text,
            }
            for e in entries
        ]
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    for e in entries:
        first_line = e.text.splitlines()[0] if e.text else ""
        error = f"  ✗ {e.last_error}" if e.last_error else ""
        when = f"sent {shown(e.sent_at, tz)}" if e.sent_at else f"next {shown(e.next_attempt_at, tz)}"
        print(
            f"#{e.id:<6} {e.status:<7} {e.chat.key:<28} tries {e.attempts:<2} "
            f"{when}  {first_line[:60]}{error}"
        )
    if not entries:
        print("no failed messages" if args.failed else "no messages yet")
    return 0
