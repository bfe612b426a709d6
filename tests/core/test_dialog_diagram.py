"""docs/dialogs.md is generated from the dialog registry and must be current; the registry itself holds
every dialog once, with the fields the engine relies on."""

from __future__ import annotations

from pathlib import Path

from core.dialogs import diagram
from core.dialogs.registry import DIALOGS, STARTED_BY

DOC = Path(__file__).resolve().parents[2] / "docs" / "dialogs.md"


def test_the_dialog_diagram_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == diagram.render(), (
        "docs/dialogs.md is stale: run `python -m core.dialogs.diagram > docs/dialogs.md`"
    )


def test_every_dialog_is_drawn_with_its_steps_in_order() -> None:
    text = diagram.render()
    for dialog in DIALOGS.values():
        chart = diagram.flowchart(dialog)
        assert chart in text
        positions = [chart.index(f'["{step.slot}<br/>') for step in dialog.steps]
        assert positions == sorted(positions)


def test_the_registry_names_each_dialog_once() -> None:
    assert set(DIALOGS) == {"report", "st_comment", "st_resolve", "st_reject", "dp_place", "reopen"}
    assert all(name == dialog.name for name, dialog in DIALOGS.items())
    assert list(STARTED_BY) == ["new"] and STARTED_BY["new"] is DIALOGS["report"]
    assert [d.name for d in DIALOGS.values() if d.staff] == [
        "st_comment",
        "st_resolve",
        "st_reject",
        "dp_place",
    ]
