"""`otklik residents forget|show CHANNEL:ID` and `otklik photos hide TICKET N`: an operator's side of
residents' personal data (a written request to delete or to see what is kept; a face or a plate in a photo).

Each goes through the same storage functions as the bot's `/forget` and `/mydata` (`Residents` port), and is
logged in `privacy_log` without the identity. Output names the chat only as the operator typed it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bots.app import build_app
from core.messages import ChatRef

if TYPE_CHECKING:
    from bots.settings import Settings  # pydantic: not for the admin commands (bots/env_settings.py)

_CHAT = re.compile(r"(?P<channel>[a-z][a-z0-9_]{0,15}):(?P<chat_id>[^\s:]{1,64})")


def add_commands(sub: Any) -> None:
    residents = sub.add_parser("residents", help="residents' personal data").add_subparsers(
        dest="residents_command", required=True
    )
    forget = residents.add_parser(
        "forget", help="delete a resident's personal data and anonymise their tickets (as /forget)"
    )
    forget.add_argument("chat", help="CHANNEL:ID, e.g. telegram:123456789")
    forget.add_argument("--json", action="store_true")
    show = residents.add_parser("show", help="what is kept about a resident, as JSON (as /mydata)")
    show.add_argument("chat", help="CHANNEL:ID")


def add_photo_commands(photos: Any) -> None:
    hide = photos.add_parser(
        "hide", help="hide a ticket's photo (a face, a plate) from residents and every public view or export"
    )
    hide.add_argument("ticket", type=int)
    hide.add_argument("position", type=int, help="1-based, in the order `tickets show` lists the photos")


def parse_chat(text: str) -> ChatRef | None:
    match = _CHAT.fullmatch(text.strip())
    return ChatRef(match["channel"], match["chat_id"]) if match else None


def run(args: argparse.Namespace, settings: Settings) -> int:
    chat = parse_chat(args.chat)
    if chat is None:
        print(
            f"otklik: expected CHANNEL:ID (e.g. telegram:123456789), got {args.chat[:80]!r}", file=sys.stderr
        )
        return 2
    app = build_app(settings, geocoding=False)
    try:
        if args.residents_command == "show":
            kept = app.db.run_sync(lambda store: store.residents.about(chat))
            print(json.dumps(kept, ensure_ascii=False, indent=2, default=str))
            return 0
        now = datetime.now(UTC)

        def forget(store: Any) -> tuple[int, list[str]]:
            count = store.residents.forget(chat, now, "operator")
            return count, list(store.residents.removed_photos)

        anonymised, shas = app.db.run_sync(forget)
        removed = asyncio.run(app.remove_photo_files(shas)) if shas else None
    finally:
        app.close()
    result = {"tickets_anonymised": anonymised, "photos_removed": len(shas)}
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"forgotten: {anonymised} ticket(s) anonymised, {len(shas)} unattached photo(s) removed"
            + (f" ({removed})" if removed else "")
        )
    return 0


def hide_photo(args: argparse.Namespace, settings: Settings) -> int:
    app = build_app(settings, geocoding=False)
    try:
        now = datetime.now(UTC)
        done = app.db.run_sync(
            lambda store: store.residents.hide_photo(args.ticket, args.position, now, "operator")
        )
    finally:
        app.close()
    if not done:
        print(f"otklik: ticket {args.ticket} has no photo {args.position}", file=sys.stderr)
        return 2
    print(f"ticket {args.ticket}: photo {args.position} hidden from residents and public views")
    return 0
