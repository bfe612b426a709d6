"""A Mermaid diagram of every registered dialog, generated from the registry so that it cannot drift:
`python -m core.dialogs.diagram > docs/dialogs.md` (a test fails when that file is not current).

Each dialog is drawn as its steps in order (slot and accepted input kinds), a step asked only under a
condition entered by an edge named after its `applies` function and bypassed by a dotted one, and where it
ends: the action it finishes with, and the main menu when one follows.
"""

from __future__ import annotations

from collections.abc import Callable

from core.dialogs.dialog import Dialog
from core.dialogs.registry import DIALOGS
from core.dialogs.steps import Step, always

HEADER = """# Dialogs

Generated from `core/dialogs/registry.py` by `python -m core.dialogs.diagram > docs/dialogs.md`; do not edit
by hand (`tests/core/test_dialog_diagram.py` fails when this file is not current). Every dialog also ends on
/cancel, and a staff dialog when the person's staff access ends.
"""


def _name(function: Callable[..., object]) -> str:
    return f"{function.__module__.rsplit('.', 1)[-1]}.{function.__name__}"


def _node(index: int, step: Step) -> str:
    kinds = ", ".join(sorted(step.accepts))
    return f'    s{index}["{step.slot}<br/><small>{kinds}</small>"]'


def _edge(source: str, target: str, label: str, dotted: bool = False) -> str:
    arrow = "-.->" if dotted else "-->"
    return f"    {source} {arrow}|{label}| {target}" if label else f"    {source} {arrow} {target}"


def flowchart(dialog: Dialog) -> str:
    """One dialog as a Mermaid flowchart."""
    start = f"/{dialog.command}" if dialog.command else "a ticket's button"
    lines = ["flowchart TD", f'    start(["{start}"])']
    # Edges waiting for the next node: (source, label, dotted). A conditional step is entered under its
    # condition and bypassed otherwise, so its sources also carry on to the step after it.
    pending: list[tuple[str, str, bool]] = [("start", "", False)]
    for index, step in enumerate(dialog.steps):
        node = f"s{index}"
        lines.append(_node(index, step))
        if step.applies is always:
            lines.extend(_edge(source, node, label, dotted) for source, label, dotted in pending)
            pending = [(node, "", False)]
            continue
        condition = _name(step.applies)
        lines.extend(_edge(source, node, condition) for source, _label, _dotted in pending)
        pending = [(node, "", False), *((source, f"not {condition}", True) for source, _l, _d in pending)]
    ending = [_name(dialog.finish)] if dialog.finish is not None else []
    ending.append("main menu" if dialog.then_menu else "end")
    lines.append(f'    done(["{" → ".join(ending)}"])')
    lines.extend(_edge(source, "done", label, dotted) for source, label, dotted in pending)
    return "\n".join(lines)


def section(dialog: Dialog) -> str:
    facts = [
        f"- stored as `{dialog.name}`; /start says `{dialog.resume}`, /cancel says `{dialog.cancelled}`",
    ]
    if dialog.staff:
        facts.append("- staff only: it ends when the person's staff access does")
    return "\n".join([f"## {dialog.name}", "", *facts, "", "```mermaid", flowchart(dialog), "```"])


def render() -> str:
    return "\n\n".join([HEADER.rstrip(), *(section(d) for d in DIALOGS.values())]) + "\n"


if __name__ == "__main__":
    print(render(), end="")
