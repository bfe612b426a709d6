"""Every dialog, every ticket-card button and every staff command, registered once.

The engine asks here and has no branch of its own for any dialog: which dialog is active (`active`), what
its steps are, what to say on /start and /cancel, whether it ends with the main menu, which dialog a
command starts, which function a pressed ticket-card button runs. To add a dialog: write its steps and a
`Dialog` record in its own module, list the record in `DIALOGS`, and regenerate docs/dialogs.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from core.buttons import ButtonData
from core.context import Ctx, Refusal
from core.dialogs import dispatch, privacy, report, staff, verdict, web
from core.dialogs.dialog import Dialog, end
from core.dialogs.steps import DIALOG_KEY
from core.messages import Reply

DIALOGS: Final[dict[str, Dialog]] = {
    dialog.name: dialog
    for dialog in (
        report.REPORT,
        staff.COMMENT,
        staff.RESOLVE,
        staff.REJECT,
        dispatch.PLACE,
        verdict.REOPEN,
    )
}

STARTED_BY: Final[dict[str, Dialog]] = {d.command: d for d in DIALOGS.values() if d.command}
"""Dialogs a command starts (`/new`); the others start from a ticket-card button."""

Action = Callable[[Ctx, Any], list[Reply]]
ACTIONS: Final[dict[type[ButtonData], Action]] = {
    **staff.ACTIONS,
    **dispatch.ACTIONS,
    **verdict.ACTIONS,
    **privacy.ACTIONS,
}
"""Buttons on ticket notifications, by their parsed type: each acts on the ticket it carries."""

COMMANDS: Final[dict[str, Callable[[Ctx, str], list[Reply]]]] = {
    **staff.COMMANDS,
    **privacy.COMMANDS,
    **web.COMMANDS,
}
"""Commands besides the engine's own (/start, /help, /cancel, /language, /my and the dialogs' own)."""


def active(ctx: Ctx) -> Dialog | None:
    """The chat's running dialog (None when idle, or when the stored name is not a dialog any more)."""
    name = ctx.state.get(DIALOG_KEY)
    return DIALOGS.get(name) if isinstance(name, str) else None


def revoked(ctx: Ctx) -> None:
    """A staff dialog of someone whose staff access ended meanwhile ends now, whatever they send, and they
    are refused as anyone who is not staff."""
    dialog = active(ctx)
    if dialog is None or not dialog.staff or staff.member(ctx) is not None:
        return
    end(ctx)
    raise Refusal(staff.not_staff(ctx))


def help_text(ctx: Ctx) -> Reply | None:
    """Help follows the person's role, not the dialog: staff and dispatchers get theirs; None for a
    resident (the engine's own help)."""
    return staff.help_text(ctx)
