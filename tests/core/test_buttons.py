"""The button grammar (core/buttons.py): every format builds the exact wire string shipped before it existed,
parses back to the same value, and anything else — extra or empty parts, non-ASCII digits, huge ids, scores
out of 1–5 — parses to None and gets the engine's one stale-button answer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core import buttons as b
from core.engine import Engine
from core.parsing import MAX_ID
from tests.support import Resident, Staff, submit_report

# One example of every format, with the wire string residents' and staff chats already hold.
SHIPPED: dict[str, b.ButtonData] = {
    "menu:new": b.Menu("new"),
    "menu:mine": b.Menu("mine"),
    "menu:help": b.Menu("help"),
    "menu:language": b.Menu("language"),
    "lang:en": b.Language("en"),
    "ticket:12": b.MyTicket(12),
    "report:cancel": b.Cancel(),
    "cat:roads": b.Category("roads"),
    "sub:roads.pothole": b.Subcategory("roads.pothole"),
    "sub:back": b.SubcategoryBack(),
    "place:yes": b.PlaceAnswer("yes"),
    "place:no": b.PlaceAnswer("no"),
    "place:keep": b.PlaceAnswer("keep"),
    "place:pick:0": b.PlacePick(0),
    "nearby:same:7": b.NearbySame(7),
    "nearby:different": b.NearbyDifferent(),
    "photos:done": b.PhotosDone(),
    "review:submit": b.ReviewSubmit(),
    "review:edit:location": b.ReviewEdit("location"),
    "st:q": b.StaffQueue(),
    "st:open:12": b.StaffOpen(12),
    "st:take:12": b.StaffTake(12),
    "st:com:12": b.StaffComment(12),
    "st:res:12": b.StaffResolve(12),
    "st:rej:12": b.StaffReject(12),
    "res:done": b.ResolvePhotosDone(),
    "res:skip": b.ResolveNoComment(),
    "rej:duplicate": b.RejectReason("duplicate"),
    "dp:route:12": b.RouteChoices(12),
    "dp:to:12:roads_service": b.RouteTo(12, "roads_service"),
    "dp:place:12": b.SetPlace(12),
    "dpp:save": b.PlaceSave(),
    "dpp:again": b.PlaceAgain(),
    f"vd:rate:{MAX_ID}:5": b.Rate(MAX_ID, 5),
    "vd:nf:12": b.NotFixed(12),
    "ro:done": b.ReopenPhotosDone(),
    "pd:consent:yes": b.ConsentAnswer("yes"),
    "pd:forget:no": b.ForgetAnswer("no"),
}


@pytest.mark.parametrize(("wire", "value"), SHIPPED.items(), ids=list(SHIPPED))
def test_every_format_builds_its_shipped_string_and_parses_back(wire: str, value: b.ButtonData) -> None:
    assert value.data == wire
    assert b.parse(wire) == value
    assert len(wire.encode()) <= 64  # Telegram's limit on callback data


def test_every_format_is_covered() -> None:
    assert {type(value) for value in SHIPPED.values()} == set(b.FORMATS)


def test_the_cancel_button_is_defined_once() -> None:
    assert b.CANCEL == "report:cancel" == b.Cancel().data


FORGED = [
    "",
    "nonsense",
    ":",
    "menu:",
    "menu:frobnicate",
    "menu:new:1",
    "lang:de",
    "lang:",
    "ticket:",
    "ticket:١٢",
    "ticket:²",
    "ticket:-1",
    "ticket:0",
    f"ticket:{MAX_ID + 1}",
    "ticket:99999999999999999999",
    "ticket:12:1",
    "report:cancel:now",
    "cat:",
    "cat:roads:extra",
    "sub:back:1",
    "place:maybe",
    "place:pick",
    "place:pick:",
    "place:pick:x",
    "place:pick:-1",
    "nearby:same:",
    "nearby:same:1:2",
    "photos:done:1",
    "review:edit:everything",
    "st:q:1",
    "st:take",
    "st:take:",
    "st:take:12:1",
    "st:frobnicate:1",
    "dp:route:12:extra",
    "dp:to:12",
    "dp:to:12:",
    "dp:to::roads_service",
    "dpp:maybe",
    "vd:rate:12",
    "vd:rate:12:",
    "vd:rate:12:0",
    "vd:rate:12:6",
    "vd:rate:12:05",
    "vd:rate:12:５",
    "vd:rate:12:5:5",
    "vd:rate::5",
    "vd:rate:²:5",
    "vd:nf:²",
    "ro:done:now",
    "st:take:" + "1" * 70,
]


@pytest.mark.parametrize("data", FORGED)
def test_malformed_or_forged_data_parses_to_none(data: str) -> None:
    assert b.parse(data) is None


def test_no_callback_data_is_built_outside_the_grammar() -> None:
    """Callback strings are built only by core/buttons.py: no f-string in core/ starts with a namespace."""
    namespaces = {literal[0] for literal in (b._literals(cls) for cls in b.FORMATS)}
    offenders = []
    for path in (Path(__file__).resolve().parents[2] / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                head = str(node.values[0].value)
                if head.partition(":")[0] in namespaces and ":" in head:
                    offenders.append(f"{path}:{node.lineno}")
    assert not offenders


# --- through the engine: one stale path --------------------------------------------------------------------
@pytest.mark.parametrize("data", [d for d in FORGED if d and not b.on_card(d)])
async def test_a_resident_gets_the_stale_answer_and_the_menu(engine: Engine, data: str) -> None:
    r = Resident(engine)
    await r.send(button=data)
    await r.expect("button.stale", "menu.prompt")


async def test_inside_a_dialog_the_stale_answer_asks_the_question_again(engine: Engine) -> None:
    r = Resident(engine)
    await r.command("new")
    for data in ("cat:", "cat:roads:extra", "sub:back", "vd:rate:1:9", "nonsense"):
        await r.send(button=data)
        await r.expect("button.stale", *(() if b.on_card(data) else ("report.category.ask",)))


async def test_forged_card_buttons_are_refused_alone(engine: Engine) -> None:
    """A ticket-card button (st:, dp:, vd:) acts outside the conversation: a stale one is refused without
    asking the chat's question again."""
    s = Staff(engine, "d1", name="Диспетчер")
    await s.join("dispatch", "dispatcher")
    number = await submit_report(Resident(engine))
    for data in [d for d in FORGED if b.on_card(d)]:
        await s.send(button=data)
        await s.expect("button.stale")
    await s.send(button=b.RouteChoices(number).data)
    await s.expect("dispatch.route_ask")
