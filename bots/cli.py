"""`otklik` — the command line (DESIGN.md §8: command names are public interface).

Start-up time matters for the admin commands (`tickets`, `stats`, `staff`, `outbox`, `config`): what only
`run`, `chat` or `db upgrade` need — the channels and their libraries, the web server, alembic, the geocoder's
HTTP client — is imported inside those commands (bench/startup_cli.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError

from bots import env_settings, open311_cli, privacy_cli, staff_cli, web_cli
from bots.app import build_app, check_schema, load_config_file, prepare_data_folder, prepare_database
from bots.errors import SetupError
from bots.logging_setup import install_redaction
from bots.reports import shown, stats_document, stats_lines, ticket_document, ticket_row
from bots.roles import ROLES, Role
from core.domain.tickets import Status
from core.municipality import ConfigError
from storage.database import Database

if TYPE_CHECKING:
    from bots.settings import Settings

log = logging.getLogger(__name__)
TIMES = ("created_at", "deadline", "resolved_at")
"""Moments in `tickets show`, printed in the city's local time."""


class _Unread:
    """A command's parser while another command runs: whatever is added to it, argparse never reads."""

    def __getattr__(self, name: str) -> Callable[..., _Unread]:
        return lambda *args, **kwargs: self


class _Commands:
    """The commands for one command line: each is listed (in `--help`, in errors), but only the subcommands
    and options of the one that runs are built — 17 parsers of 36 for `tickets list`, and a few ms less for
    every command (argparse looks up the translation of its texts for each parser)."""

    def __init__(self, sub: Any, argv: Sequence[str]) -> None:
        self.sub = sub
        # The first word that is not an option (the top level's options take no value). None: all are built
        # (tests/test_cli_parser.py compares the two). A word that names no command: argparse says so.
        self.running = next((word for word in argv if not word.startswith("-")), None)

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        parser = self.sub.add_parser(name, **kwargs)
        if self.running is None or self.running in (name, *kwargs.get("aliases", ())):
            return parser
        return _Unread()


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otklik", description="Municipal problem reports through chat bots."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = _Commands(
        parser.add_subparsers(dest="command", required=True), sys.argv[1:] if argv is None else argv
    )

    run = sub.add_parser("run", help="serve every configured channel (the console when no token is set)")
    run.add_argument(
        "--role",
        choices=ROLES,
        default=None,
        help="with several workers on one database: web (HTTP only), worker (outbox delivery and, when "
        "elected, polling and timers) or all (default)",
    )

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
    web_cli.add_export_command(tickets)

    stats = sub.add_parser("stats", help="counts, response and resolution times, ratings, reopen rate")
    stats.add_argument("--json", action="store_true")
    photos = sub.add_parser("photos", help="stored photos").add_subparsers(
        dest="photos_command", required=True
    )
    gc = photos.add_parser("gc", help="remove photos nothing refers to (after PHOTO_GC_HOURS)")
    gc.add_argument("--hours", type=float, default=None, help="grace period instead of PHOTO_GC_HOURS")
    privacy_cli.add_photo_commands(photos)  # photos hide
    staff_cli.add_commands(sub)  # staff invite|list, outbox flush|list
    open311_cli.add_commands(sub)  # open311 keys add|list|revoke
    privacy_cli.add_commands(sub)  # residents forget|show
    web_cli.add_web_commands(sub)  # web link
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser(argv).parse_args(argv)
    if args.command != "run":  # off for start-up (bots/entry.py); `run` turns it on once ready
        gc.enable()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.captureWarnings(True)  # library warnings are log lines too: same place, same level
    settings = _settings(args.command)
    if settings is None:
        return 2
    install_redaction(settings)  # before anything can log a token
    try:
        return _dispatch(args, settings)
    except ConfigError as exc:
        print(f"otklik: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except SetupError as exc:
        log.info("details (-v)", exc_info=exc)
        print(f"otklik: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        log.info("details (-v)", exc_info=exc)
        print(_database_problem(settings, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _settings(command: str) -> Settings | None:
    """The settings, or None when one is wrong (said on stderr). `run` validates them with pydantic (its
    libraries import it anyway); the other commands without, unless a value needs pydantic's judgement
    (bots/env_settings.py): the same values either way, and the same messages."""
    if command != "run":
        settings = env_settings.read()
        if settings is not None:
            return settings
    from pydantic import ValidationError

    from bots.settings import Settings, describe_errors

    try:
        return Settings()
    except ValidationError as exc:
        print("otklik: wrong setting (in the environment or .env):", file=sys.stderr)
        print("\n".join(f"  {line}" for line in describe_errors(exc)), file=sys.stderr)
        return None


def _database_problem(settings: Settings, exc: OperationalError) -> str:
    reason = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()
    setting = "DATABASE_URL" if settings.database_url else "DATA_DIR"
    return (
        f"otklik: cannot use the database {settings.shown_database_url} ({setting}): "
        f"{reason[0] if reason else type(exc).__name__}\n"
        f"Check that the database is running and reachable, and {setting} is right."
    )


def _log_to_file(settings: Settings) -> Path:
    """In the console channel the terminal is the conversation: log lines and library warnings go to a file
    under the data folder instead of between the bot's messages (WARNING and up; INFO with -v)."""
    import logging.handlers  # `run` and `chat` only, like getpass below: the admin commands start sooner

    prepare_data_folder(settings)
    path = settings.data_dir / "otklik.log"
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    root = logging.getLogger()
    for old in list(root.handlers):  # keep what was configured on them (format, filters)
        handler.setFormatter(old.formatter)
        for log_filter in old.filters:
            handler.addFilter(log_filter)
        root.removeHandler(old)
    root.addHandler(handler)
    return path


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    match args.command:
        case "run":
            return _run(settings, args.role)
        case "chat":
            _log_to_file(settings)
            return _chat(settings, args.user or _login(), args.name, args.lang)
        case "db":
            print(_upgrade(settings))
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
        case "photos" if args.photos_command == "hide":
            return privacy_cli.hide_photo(args, settings)
        case "photos":
            return _photos_gc(settings, args.hours)
        case "residents":
            return privacy_cli.run(args, settings)
        case "staff" | "outbox":
            return staff_cli.run(args, settings)
        case "open311" | "apikey":
            return open311_cli.run(args, settings)
        case "web":
            return _with_app(settings, lambda app: web_cli.web_link(app, args))
    return 2


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "local"


def _upgrade(settings: Settings) -> str:
    """`otklik db upgrade`, saying what it did: the migrations applied, or that there were none to apply."""
    from storage.migrate import revisions_between, upgrade

    if settings.is_embedded:
        prepare_data_folder(settings)
    before, after = upgrade(settings.effective_database_url)
    applied = revisions_between(before, after)
    if not applied:
        return f"database is up to date (revision {before})"
    steps = "\n".join(f"  {rev}  {message}" for rev, message in applied)
    start = before or "empty database"
    plural = "migration" if len(applied) == 1 else "migrations"
    return f"applied {len(applied)} {plural} ({start} → {applied[-1][0]}):\n{steps}"


def _run(settings: Settings, role: Role | None = None) -> int:
    """Serve the configured channels; with no channel configured (and no --role), talk in this terminal
    instead."""
    from bots.console.channel import ConsoleChannel
    from bots.runner import configured_channels, serve

    if not settings.is_embedded:
        check_schema(settings)  # embedded SQLite is upgraded by build_app instead
    app = build_app(settings)
    app.cluster.role = role or "all"
    try:
        channels = configured_channels(app)
        wants_console = not channels and role is None
        names = [channel.name for channel in channels] or (["console"] if wants_console else ["none"])
        log_file = _log_to_file(settings) if wants_console else None
        print(
            f"otklik: database {settings.shown_database_url}\n"
            f"otklik: data folder {settings.data_dir}"
            + (f" (log: {log_file})" if log_file else "")
            + f"\notklik: channels: {', '.join(names)}"
            + (f" (role {role})" if role else ""),
            file=sys.stderr,
        )
        _mention_old_data_folder(settings)
        console = None
        if wants_console:
            print(
                "otklik: no TELEGRAM_BOT_TOKEN, VK_GROUP_TOKEN or WIDGET_ORIGINS set — opening the console.",
                file=sys.stderr,
            )
            console = ConsoleChannel(app.engine, app.db, app.photos, user_id=_login())
        # The console talks in this terminal while the HTTP server, outbox delivery and timers run beside it.
        asyncio.run(serve(app, channels, until=console.run if console else None))
    finally:
        app.close()
    return 0


def _mention_old_data_folder(settings: Settings) -> None:
    """The default data folder used to be ./data: point at a database left there rather than ignore it."""
    old = Path("data", "otklik.sqlite3")
    if "data_dir" not in settings.model_fields_set and settings.is_embedded and old.is_file():
        print(
            f"otklik: note: {old.absolute()} is not used any more (the default data folder is "
            f"{settings.data_dir}); to keep using it, set DATA_DIR={old.parent.absolute()}",
            file=sys.stderr,
        )


def _chat(settings: Settings, user: str, name: str, language: str | None) -> int:
    from bots.console.channel import ConsoleChannel

    app = build_app(settings)
    try:
        channel = ConsoleChannel(app.engine, app.db, app.photos, user_id=user, name=name, language=language)
        asyncio.run(channel.run())
    finally:
        app.close()
    return 0


def _tickets(settings: Settings, args: argparse.Namespace) -> int:
    app = build_app(settings, geocoding=False)
    tz = ZoneInfo(app.municipality.timezone)  # times are shown in the city's time, with its zone
    try:
        if args.tickets_command == "export":
            return web_cli.export(app, args)
        if args.tickets_command == "list":
            status = Status(args.status) if args.status else None
            rows = app.db.run_sync(lambda store: store.tickets.list(status, args.limit))
            if args.json:
                print(json.dumps([ticket_row(t, tz) for t in rows], ensure_ascii=False, indent=2))
            else:
                for t in rows:
                    r = ticket_row(t, tz)
                    created, due = shown(r["created_at"], tz), shown(r["deadline"], tz, "%Y-%m-%d")
                    print(
                        f"No. {r['number']:<6} {r['status']:<12} {r['category']:<28} {created}  "
                        f"due {due}  {r['organisation'] or '—'}"
                        + ("  ⚠ overdue" if r["overdue"] else "")
                        + (f"  👥 {r['supporters']} supporters" if r["supporters"] else "")
                    )
                if not rows:
                    print("no tickets")
            return 0
        ticket = app.db.run_sync(lambda store: store.tickets.get(args.number))
        if ticket is None:
            print(f"otklik: no ticket No. {args.number}", file=sys.stderr)
            return 1
        doc = ticket_document(ticket, tz)
        if args.json:
            print(json.dumps(doc, ensure_ascii=False, indent=2))
        else:
            for key, value in doc.items():
                if key in TIMES:
                    value = shown(value, tz)
                if key != "events":
                    print(f"{key:>13}: {value}")
            print("       events:")
            for e in doc["events"]:
                print(
                    f"  {shown(e['at'], tz)} {e['action']:<8} {e['from_status'] or '—'} → {e['to_status']}  "
                    f"{e['actor']} {e['comment']}"
                )
        return 0
    finally:
        app.close()


def _with_app(settings: Settings, job: Any) -> int:
    app = build_app(settings, geocoding=False)
    try:
        return int(job(app))
    finally:
        app.close()


def _photos_gc(settings: Settings, hours: float | None) -> int:
    grace = timedelta(hours=settings.photo_gc_hours if hours is None else max(0.0, hours))
    app = build_app(settings, geocoding=False)
    try:
        collected = asyncio.run(app.collect_photos(datetime.now(UTC), grace))  # the bucket too
    finally:
        app.close()
    print(collected)
    return 0


def _stats(settings: Settings, as_json: bool) -> int:
    app = build_app(settings, geocoding=False)
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
