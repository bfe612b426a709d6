"""`otklik staff …` and `otklik outbox …`: inviting staff and looking after message delivery.

otklik staff invite ORG [--role staff|dispatcher|admin] [--hours 72] [--json]  a one-time code: /staff CODE
otklik staff list [--all] [--json]                   who works through the bot (--all: removed people too)
otklik staff remove PERSON [--json]        end a person's staff access now (PERSON: id or channel:id)
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
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bots.app import App, build_app
from bots.reports import iso, shown
from core.staffing import ROLES, InviteError, create_invite

if TYPE_CHECKING:  # the channels and the delivery worker are imported by `outbox flush` only (start-up time)
    from bots.delivery import FlushReport
    from bots.runner import Channel
    from bots.settings import Settings  # pydantic: not for the admin commands (bots/env_settings.py)


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
    listing.add_argument("--all", action="store_true", help="also people whose access was removed")
    listing.add_argument("--json", action="store_true")
    remove = staff.add_parser("remove", help="end a person's staff access now; history keeps their name")
    remove.add_argument("person", metavar="PERSON", help="the id from `staff list`, or channel:id")
    remove.add_argument("--json", action="store_true")

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
    flushing = args.command == "outbox" and args.outbox_command == "flush"
    app = build_app(settings, geocoding=flushing)
    try:
        if args.command == "staff":
            match args.staff_command:
                case "invite":
                    return _invite(app, args)
                case "remove":
                    return _staff_remove(app, args.person, args.json)
            return _staff_list(app, args.all, args.json)
        if args.outbox_command == "flush":
            return _flush(app, args.linger)
        return _outbox_list(app, args)
    finally:
        app.close()


def _invite(app: App, args: argparse.Namespace) -> int:
    municipality = app.municipality
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


def _staff_list(app: App, everyone: bool, as_json: bool) -> int:
    members = app.db.run_sync(lambda store: store.staff.all(removed=everyone))
    municipality = app.municipality
    rows = [
        {
            "id": m.id,
            "role": m.role,
            "organisation": m.organisation,
            "chat": m.chat.key,
            "name": m.name,
            "removed_at": m.removed_at.isoformat() if m.removed_at else None,
        }
        for m in members
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if rows:
        print(f"{'id':<5} {'role':<11} {'organisation':<24} {'chat':<28} name")
    for m, r in zip(members, rows, strict=True):
        removed = f"  (removed {_when(municipality, m.removed_at)})" if m.removed_at else ""
        print(f"{r['id']:<5} {r['role']:<11} {r['organisation']:<24} {r['chat']:<28} {r['name']}{removed}")
    if not rows:
        print("no staff yet: otklik staff invite ORG")
    return 0


def _when(municipality: Any, moment: datetime) -> str:
    return shown(moment, ZoneInfo(municipality.timezone))


def _staff_remove(app: App, person: str, as_json: bool) -> int:
    """End the person's staff access at once: their next staff button or command is refused, what was
    still queued for them as staff is dropped, and ticket history keeps their name."""
    person = person.strip()
    if len(person) > 200:
        print("otklik: PERSON is too long: give the id or channel:id from `staff list`", file=sys.stderr)
        return 2
    now = datetime.now(UTC)

    def remove(store: Any) -> tuple[str, Any, int, list[int]]:
        found = store.staff.find(person)
        if not found:
            return "unknown", None, 0, []
        if len({m.id for m in found}) > 1 and found[1].removed_at is None:
            return "ambiguous", found, 0, []
        member = found[0]
        if member.removed_at is not None:
            return "already", member, 0, []
        dropped = store.staff.remove(member.id, now)
        return "removed", member, dropped, store.tickets.held_by(member.id)

    outcome, member, dropped, held = app.db.run_sync(remove)
    if outcome == "unknown":
        print(f"otklik: no staff member {person!r}; see `otklik staff list --all`", file=sys.stderr)
        return 1
    if outcome == "ambiguous":
        ids = ", ".join(str(m.id) for m in member)
        print(f"otklik: {person!r} matches several staff members ({ids}): give the id", file=sys.stderr)
        return 2
    municipality = app.municipality
    removed_at = member.removed_at or now
    if as_json:
        doc = {
            "id": member.id,
            "role": member.role,
            "organisation": member.organisation,
            "chat": member.chat.key,
            "name": member.name,
            "removed_at": removed_at.isoformat(),
            "already_removed": outcome == "already",
            "dropped_notifications": dropped,
            "tickets_in_progress": held,
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    who = f"{member.id} {member.name} ({member.role}, {member.organisation}, {member.chat.key})"
    if outcome == "already":
        print(f"{who} was already removed on {_when(municipality, removed_at)}")
        return 0
    print(f"removed {who}: staff access ended {_when(municipality, removed_at)}")
    print(f"pending notifications for them as staff dropped: {dropped}")
    if held:
        numbers = ", ".join(f"No. {n}" for n in held)
        print(f"in progress with them: {numbers} — their colleagues can still resolve or reject these")
    return 0


def _flush(app: App, linger: float) -> int:
    from bots.background import with_console
    from bots.runner import configured_channels

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
        from bots.delivery import DeliveryWorker

        return await DeliveryWorker(app.db, senders).flush(linger=linger)
    finally:
        for channel in channels:  # built, never started: let them close their HTTP sessions
            with contextlib.suppress(Exception):
                await channel.stop()


def _outbox_list(app: App, args: argparse.Namespace) -> int:
    tz = ZoneInfo(app.municipality.timezone)
    statuses = ("dead",) if args.failed else ()  # () = every status
    entries = app.db.run_sync(lambda store: store.outbox.entries(statuses, args.limit))
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
