"""`otklik` — the command line (DESIGN.md §8: command names are public interface)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bots import staff_cli
from bots.app import NotConfigured, build_app, load_config_file, prepare_database
from bots.background import console_with_jobs
from bots.console import ConsoleChannel
from bots.logging_setup import install_redaction
from bots.photos import collect_unused
from bots.reports import stats_document, stats_lines, ticket_document, ticket_row
from bots.runner import configured_channels, serve
from bots.settings import Settings
from core.domain.tickets import Status
from core.municipality import ConfigError
from storage.database import Database
from storage.migrate import upgrade


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otklik", description="Municipal problem reports through chat bots."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="serve every configured channel (the console when no token is set)")

    chat = sub.add_parser("chat", help="talk to the bot in this terminal (or from a piped script)")
    chat.add_argument("--user", default=None, help="chat id of the console user (default: your login)")
    chat.add_argument("--name", default="", help="display name")
    chat.add_argument("--lang", choices=["ru", "en"], default=None, help="language of the conversation")

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply database migrations")

    config = sub.add_parser("config", help="municipality configuration").add_subparsers(
        dest="config_command", required=True
    )
    load = config.add_parser("load", help="load (or reload) a municipality TOML file")
    load.add_argument("file", type=Path)

    tickets = sub.add_parser("tickets", help="look at tickets").add_subparsers(
        dest="tickets_command", required=True
    )
    listing = tickets.add_parser("list", help="list tickets, newest first")
    listing.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    show = tickets.add_parser("show", help="one ticket with its history")
    show.add_argument("number", type=int)
    show.add_argument("--json", action="store_true")

    stats = sub.add_parser("stats", help="counts, response and resolution times, ratings, reopen rate")
    stats.add_argument("--json", action="store_true")
    photos = sub.add_parser("photos", help="stored photos").add_subparsers(
        dest="photos_command", required=True
    )
    gc = photos.add_parser("gc", help="remove photos nothing refers to (after PHOTO_GC_HOURS)")
    gc.add_argument("--hours", type=float, default=None, help="grace period instead of PHOTO_GC_HOURS")
    staff_cli.add_commands(sub)  # staff invite|list, outbox flush|list
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    settings = Settings()
    install_redaction(settings)  # before anything can log a token
    try:
        return _dispatch(args, settings)
    except ConfigError as exc:
        print(f"otklik: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except NotConfigured as exc:
        print(f"otklik: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    match args.command:
        case "run":
            return _run(settings)
        case "chat":
            return _chat(settings, args.user or _login(), args.name, args.lang)
        case "db":
            upgrade(settings.effective_database_url)
            print("database is up to date")
            return 0
        case "config":
            prepare_database(settings)
            db = Database(settings.effective_database_url)
            try:
                municipality, changed = load_config_file(db, args.file)
            finally:
                db.close()
            state = "loaded" if changed else "unchanged"
            print(
                f"{municipality.code}: {state} ({len(municipality.categories)} categories, "
                f"{len(municipality.organisations)} organisations)"
            )
            return 0
        case "tickets":
            return _tickets(settings, args)
        case "stats":
            return _stats(settings, args.json)
        case "photos":
            return _photos_gc(settings, args.hours)
        case "staff" | "outbox":
            return staff_cli.run(args, settings)
    return 2


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "local"


def _run(settings: Settings) -> int:
    """Serve the configured channels; with no channel configured, talk in this terminal instead."""
    app = build_app(settings)
    try:
        channels = configured_channels(app)
        if not channels:
            print(
                "otklik: no TELEGRAM_BOT_TOKEN or VK_GROUP_TOKEN set — opening the console channel.",
                file=sys.stderr,
            )
            console = ConsoleChannel(app.engine, app.db, app.photos, user_id=_login())
            asyncio.run(console_with_jobs(app, console))  # with outbox delivery and the timers
        else:
            asyncio.run(serve(app, channels))
    finally:
        app.close()
    return 0


def _chat(settings: Settings, user: str, name: str, language: str | None) -> int:
    app = build_app(settings)
    try:
        channel = ConsoleChannel(app.engine, app.db, app.photos, user_id=user, name=name, language=language)
        asyncio.run(channel.run())
    finally:
        app.close()
    return 0


def _tickets(settings: Settings, args: argparse.Namespace) -> int:
    app = build_app(settings)
    try:
        if args.tickets_command == "list":
            status = Status(args.status) if args.status else None
            rows = app.db.run_sync(lambda store: store.list_tickets(status, args.limit))
            if args.json:
                print(json.dumps([ticket_row(t) for t in rows], ensure_ascii=False, indent=2))
            else:
                for t in rows:
                    r = ticket_row(t)
                    print(
                        f"№{r['number']:<6} {r['status']:<12} {r['category']:<28} {r['created_at'][:16]}  "
                        f"до {r['deadline'][:10] if r['deadline'] else '—'}  {r['organisation'] or '—'}"
                        + ("  ⚠ просрочено" if r["overdue"] else "")
                        + (f"  👥 {r['supporters']} supporters" if r["supporters"] else "")
                    )
                if not rows:
                    print("no tickets")
            return 0
        ticket = app.db.run_sync(lambda store: store.get_ticket(args.number))
        if ticket is None:
            print(f"otklik: no ticket № {args.number}", file=sys.stderr)
            return 1
        doc = ticket_document(ticket)
        if args.json:
            print(json.dumps(doc, ensure_ascii=False, indent=2))
        else:
            for key, value in doc.items():
                if key != "events":
                    print(f"{key:>13}: {value}")
            print("       events:")
            for e in doc["events"]:
                print(
                    f"  {e['at'][:16]} {e['action']:<8} {e['from_status'] or '—'} → {e['to_status']}  "
                    f"{e['actor']} {e['comment']}"
                )
        return 0
    finally:
        app.close()


def _photos_gc(settings: Settings, hours: float | None) -> int:
    grace = timedelta(hours=settings.photo_gc_hours if hours is None else max(0.0, hours))
    app = build_app(settings)
    try:
        collected = asyncio.run(collect_unused(app.db, app.photos, datetime.now(UTC), grace))
    finally:
        app.close()
    print(collected)
    return 0


def _stats(settings: Settings, as_json: bool) -> int:
    app = build_app(settings)
    try:
        doc = app.db.run_sync(stats_document)
    finally:
        app.close()
    if as_json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        print("\n".join(stats_lines(doc)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
