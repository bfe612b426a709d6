"""Rewrite calls of the old 29-method `Store` to the focused ports of the unit of work.

`store.get_ticket(7)` becomes `store.tickets.get(7)`, and so on. Idempotent: a rewritten call no longer
matches, so running it twice changes nothing. Run it over trees merged after the ports split:

    python rename_store.py core bots tests bench && ruff check --fix . && ruff format .

It also renames the `Store` protocol to `UnitOfWork` in modules importing it from core.ports, and imports the
`Geocoder` protocol from core.ports instead of core.geo.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RENAMES = {
    # processed delivery ids
    "claim_event": "events.claim",
    "event_seen": "events.seen",
    "prune_events": "events.prune",
    # dialog state
    "load_dialog": "dialogs.load",
    "save_dialog": "dialogs.save",
    # tickets
    "create_ticket": "tickets.create",
    "get_ticket": "tickets.get",
    "lock_ticket": "tickets.lock",
    "update_ticket": "tickets.update",
    "set_status": "tickets.set_status",
    "add_event": "tickets.add_event",
    "add_ticket_photos": "tickets.add_photos",
    "list_tickets": "tickets.list",
    "tickets_of": "tickets.of",
    "queue": "tickets.queue",
    "tickets_to_autoclose": "tickets.to_autoclose",
    "tickets_newly_overdue": "tickets.newly_overdue",
    "nearby_tickets": "tickets.nearby",
    "tickets_held_by": "tickets.held_by",
    "stats_rows": "tickets.stats_rows",
    "count_by": "tickets.count_by",
    # staff
    "create_invite": "staff.create_invite",
    "find_invite": "staff.find_invite",
    "use_invite": "staff.use_invite",
    "staff_code_failures": "staff.code_failures",
    "record_staff_code_failure": "staff.record_code_failure",
    "bind_staff": "staff.bind",
    "get_staff": "staff.get",
    "staff_by_id": "staff.by_id",
    "staff_of": "staff.of",
    "dispatchers": "staff.dispatchers",
    "set_staff_language": "staff.set_language",
    "remove_staff": "staff.remove",
    "all_staff": "staff.all",
    "find_staff": "staff.find",
    # supporters ("me too")
    "subscribe": "supporters.add",
    "subscribers_of": "supporters.of",
    "followers_of": "supporters.with_languages",
    "is_subscribed": "supporters.includes",
    # outbox
    "enqueue": "outbox.enqueue",
}
RECEIVERS = ("store", "uow")
"""Variable names that hold a unit of work in the project's code (jobs, lambdas, the notify context)."""

CALL = re.compile(rf"\b({'|'.join(RECEIVERS)})\.({'|'.join(RENAMES)})\(")


STORE_IMPORT = re.compile(r"^from core\.ports import .*\bStore\b", re.MULTILINE)
STORE_NAME = re.compile(r"(?<![\w.`])Store\b(?![.`])")
"""The protocol's old name, in a module importing it from core.ports (imports and annotations)."""


GEO_IMPORT = re.compile(r"^from core\.geo import (.*)$", re.MULTILINE)
"""The geocoder port moved from core/geo.py to core/ports.py; `ruff check --fix` merges the imports after."""


def _geocoder_from_ports(m: re.Match[str]) -> str:
    names = [n.strip() for n in m.group(1).split(",")]
    if "Geocoder" not in names:
        return m.group(0)
    rest = [n for n in names if n != "Geocoder"]
    moved = "from core.ports import Geocoder"
    return f"from core.geo import {', '.join(rest)}\n{moved}" if rest else moved


def rewrite(source: str) -> str:
    source = CALL.sub(lambda m: f"{m.group(1)}.{RENAMES[m.group(2)]}(", source)
    if STORE_IMPORT.search(source):
        source = STORE_NAME.sub("UnitOfWork", source)
    return GEO_IMPORT.sub(_geocoder_from_ports, source)


def main(roots: list[str]) -> int:
    changed = 0
    for root in roots or ["core"]:
        paths = [Path(root)] if root.endswith(".py") else sorted(Path(root).rglob("*.py"))
        for path in paths:
            text = path.read_text(encoding="utf-8")
            new = rewrite(text)
            if new != text:
                path.write_text(new, encoding="utf-8")
                changed += 1
                print(f"rewrote {path}")
    print(f"{changed} file(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
