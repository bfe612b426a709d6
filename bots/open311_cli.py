"""`otklik open311 keys …`: API keys of the partner systems that use Open311 (web/open311/).

otklik open311 keys add NAME [--read-only] [--rate N] [--json]   a new key, printed once (its hash is kept)
otklik open311 keys list [--json]                               every key: rights, rate, created, revoked
otklik open311 keys revoke NAME [--json]                        refuse the key from now on (403)
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from bots.app import App, build_app
from core.ports import Open311UnitOfWork

if TYPE_CHECKING:
    from bots.settings import Settings  # pydantic: not for the admin commands (bots/env_settings.py)


def add_commands(sub: Any) -> None:
    """`otklik open311 keys add|list|revoke`, and the same as `otklik apikey create|list|revoke` (the names
    the Open311 issue gives them; `add` and `create` are one command)."""
    open311_keys = (
        sub.add_parser("open311", help="the Open311 GeoReport v2 API")
        .add_subparsers(dest="open311_command", required=True)
        .add_parser("keys", help="partner systems' API keys")
    )
    apikey = sub.add_parser("apikey", help="partner systems' Open311 API keys (as `open311 keys`)")
    for parser in (open311_keys, apikey):
        _add_key_commands(parser.add_subparsers(dest="keys_command", required=True))


def _add_key_commands(keys: Any) -> None:
    add = keys.add_parser("add", aliases=["create"], help="a new API key for NAME, printed once")
    add.add_argument("name", metavar="NAME", help="the partner system (a-z, 0-9, _ . -; at most 40)")
    add.add_argument("--read-only", action="store_true", help="may read but not file requests")
    add.add_argument("--rate", type=_rate, default=None, help="requests a minute (OPEN311_RATE_PER_MINUTE)")
    add.add_argument("--json", action="store_true")
    listing = keys.add_parser("list", help="every key: rights, rate, when made and revoked")
    listing.add_argument("--json", action="store_true")
    revoke = keys.add_parser("revoke", help="refuse the key from now on")
    revoke.add_argument("name", metavar="NAME")
    revoke.add_argument("--json", action="store_true")


def _rate(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of requests a minute, 1 to 100000")
    return int(text)


def run(args: argparse.Namespace, settings: Settings) -> int:
    app = build_app(settings, geocoding=False)
    try:
        match args.keys_command:
            case "add" | "create":
                return _add(app, args, settings)
            case "revoke":
                return _revoke(app, args.name, args.json)
        return _list(app, args.json)
    finally:
        app.close()


def _add(app: App, args: argparse.Namespace, settings: Settings) -> int:
    from core.open311 import KeyExists, create_key  # with the filing code: not for every other command

    rate = args.rate or settings.open311_rate_per_minute
    now = datetime.now(UTC)
    try:
        key = app.db.run_sync(
            lambda uow: create_key(
                uow, args.name, can_write=not args.read_only, rate_per_minute=rate, now=now
            )
        )
    except KeyExists:
        print(
            f"otklik: an API key named {args.name!r} exists already (names are never reused)", file=sys.stderr
        )
        return 2
    except ValueError as exc:
        print(f"otklik: {exc}", file=sys.stderr)
        return 2
    rights = "read-only" if args.read_only else "read-write"
    if args.json:
        doc = {"name": args.name, "key": key, "rights": rights, "rate_per_minute": rate}
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    print(f"API key for {args.name} ({rights}, {rate} requests a minute). It is shown only this once:")
    print(key)
    return 0


def _list(app: App, as_json: bool) -> int:
    keys = app.db.run_sync(lambda uow: list(cast(Open311UnitOfWork, uow).open311.keys()))
    rows = [
        {
            "name": k.name,
            "rights": "read-write" if k.can_write else "read-only",
            "rate_per_minute": k.rate_per_minute,
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }
        for k in keys
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        revoked = f"  revoked {r['revoked_at']}" if r["revoked_at"] else ""
        rate = f"{r['rate_per_minute']:>6}/min"
        print(f"{r['name']:<24} {r['rights']:<10} {rate}  created {r['created_at']}{revoked}")
    if not rows:
        print("no API keys")
    return 0


def _revoke(app: App, name: str, as_json: bool) -> int:
    now = datetime.now(UTC)
    done = app.db.run_sync(lambda uow: cast(Open311UnitOfWork, uow).open311.revoke_key(name, now))
    if as_json:
        print(json.dumps({"name": name, "revoked": done}))
    elif done:
        print(f"API key {name} revoked: it is refused from now on")
    else:
        print(f"otklik: no active API key named {name!r}", file=sys.stderr)
    return 0 if done else 1
