"""Residents' personal data in the conversation (152-ФЗ): the notice and consent, `/mydata`, `/forget`.

- **Consent.** On first contact (`/start`, or the first message) and before any report (`/new`, the menu
  item) a resident without an answer on record sees the notice — who processes their data, what for, how
  long, the city's policy link — with *I agree* / *I decline*. The answer, the notice's version and the time
  are recorded (`Residents.record_consent`). Agreeing after `/new` goes straight on to the report; declining
  leaves help, the menu and language open, and a later `/new` answers why it cannot file and shows the
  notice again. Residents with tickets from before the notice existed have no answer on record: they are
  asked once, at their next report.
- **`/mydata`**: what is kept about the chat, as a summary and a JSON file.
- **`/forget`**: after a confirmation, the chat's personal data is deleted and its tickets anonymised
  (`Residents.forget`); the dialog state is not saved again (`FORGOTTEN`).
"""

from __future__ import annotations

import json
from typing import Any, Final

from core.buttons import ConsentAnswer, ForgetAnswer, parse
from core.context import Ctx
from core.dialogs import staff
from core.dialogs.dialog import Dialog, begin, end
from core.dialogs.menu import main_menu
from core.dialogs.report import REPORT
from core.dialogs.steps import DIALOG_KEY, current_step, input_kind
from core.messages import Document, Reply
from core.personal_data import NOTICE_VERSION

AFTER_CONSENT = "after_consent"
"""Dialog state: the command that asked for consent, run once the resident agrees."""
CONSENTED: Final = "pd"
"""Dialog state: the chat's agreement is on record (a cache, so a report's steps cost no extra query; it
goes with the state on /forget)."""
FORGOTTEN: Final = "forgotten"
"""Dialog state: the chat was just forgotten — the engine must not write its state back."""
EXPORT_NAME = "otklik-my-data.json"
GATED: Final = {REPORT.command: REPORT}
GATED_BY_NAME: Final = {REPORT.name: REPORT}
"""Dialogs that wait for consent (`Dialog.personal`), by the command that starts them: run on agreeing."""


def notice(ctx: Ctx) -> Reply:
    years = ctx.privacy.retention_days / 365
    kept = (
        ctx.t("privacy.kept_years", count=round(years))
        if ctx.privacy.retention_days >= 365 and years == round(years)
        else ctx.t("privacy.kept_days", count=ctx.privacy.retention_days)
        if ctx.privacy.retention_days
        else ctx.t("privacy.kept_always")
    )
    url = ctx.municipality.privacy_policy_url
    policy = "\n" + ctx.t("privacy.policy", url=url) if url else ""
    text = ctx.t("privacy.notice", city=ctx.municipality.name(ctx.lang), kept=kept, policy=policy)
    rows = (
        ((ctx.t("privacy.agree"), ConsentAnswer("yes").data),),
        ((ctx.t("privacy.decline"), ConsentAnswer("no").data),),
    )
    return Reply(text=text, buttons=rows, language=ctx.lang)


def first_contact(ctx: Ctx) -> list[Reply]:
    """What follows the welcome: the notice when consent is required and the chat never answered it, else
    the main menu."""
    if ctx.privacy.consent_required and ctx.store.residents.consent(ctx.chat) is None:
        return [notice(ctx)]
    return [main_menu(ctx)]


def gate(ctx: Ctx, command: str) -> list[Reply] | None:
    """None when the chat may start a dialog that stores personal data; otherwise the notice (with why,
    for a resident who declined), and `command` is remembered to run once they agree."""
    if not ctx.privacy.consent_required or ctx.state.get(CONSENTED):
        return None
    consent = ctx.store.residents.consent(ctx.chat)
    if consent is not None and consent.agreed:
        ctx.state[CONSENTED] = 1
        return None
    ctx.state[AFTER_CONSENT] = command
    said = [notice(ctx)]
    return [ctx.reply("privacy.required"), *said] if consent is not None else said


def answer_consent(ctx: Ctx, pressed: ConsentAnswer) -> list[Reply]:
    agreed = pressed.answer == "yes"
    ctx.store.residents.record_consent(ctx.chat, agreed, f"{NOTICE_VERSION}/{ctx.lang}", ctx.now)
    then = ctx.state.pop(AFTER_CONSENT, None)
    if not agreed:
        ctx.state.pop(CONSENTED, None)
        end(ctx)  # a draft begun before the notice existed is not filed without consent
        return [main_menu(ctx, "privacy.declined")]
    ctx.state[CONSENTED] = 1
    if (active := ctx.state.get(DIALOG_KEY)) is not None and active in {d.name for d in GATED.values()}:
        step = current_step(ctx, GATED_BY_NAME[active].steps)  # a draft waiting for consent: go on with it
        return [ctx.reply("privacy.agreed"), *([step.prompt(ctx)] if step is not None else [])]
    dialog = GATED.get(then) if isinstance(then, str) else None
    if dialog is not None:
        return [ctx.reply("privacy.agreed"), *begin(ctx, dialog)]
    return [main_menu(ctx, "privacy.agreed")]


def gate_draft(ctx: Ctx, dialog: Dialog) -> list[Reply] | None:
    """A personal dialog already running without consent on record (begun before the notice existed, or
    consent withdrawn meanwhile): the notice comes before any further step; the draft waits."""
    if not dialog.personal or not ctx.privacy.consent_required or ctx.state.get(CONSENTED):
        return None
    if input_kind(ctx.incoming) == "button" and isinstance(parse(ctx.incoming.button), ConsentAnswer):
        return None  # the answer to the notice itself
    return gate(ctx, dialog.command)


# --- /mydata ---------------------------------------------------------------------------------------------
def my_data(ctx: Ctx, _args: str = "") -> list[Reply]:
    kept = ctx.store.residents.about(ctx.chat)
    ctx.store.residents.log("mydata", "resident", ctx.chat.channel, len(kept["tickets"]), ctx.now)
    consent = ctx.store.residents.consent(ctx.chat)
    summary = ctx.t(
        "privacy.mydata",
        chats=", ".join(f"{c['channel']}:{c['chat_id']}" for c in kept["chats"]),
        chat_language=kept["language"] or ctx.lang,
        consent=(
            ctx.t(
                "privacy.consent_yes" if consent.agreed else "privacy.consent_no",
                at=ctx.local(consent.at, "datetime"),
            )
            if consent
            else ctx.t("privacy.consent_none")
        ),
        tickets=_numbers(kept["tickets"]),
        supported=_numbers(kept["supported_tickets"]),
        photos=sum(len(t["photos"]) for t in kept["tickets"]),
    )
    content = json.dumps(kept, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    return [Reply(text=summary, language=ctx.lang, document=Document(EXPORT_NAME, content))]


def _numbers(tickets: list[dict[str, Any]]) -> str:
    return ", ".join(f"№{t['number']}" for t in tickets) or "—"


# --- /forget ---------------------------------------------------------------------------------------------
def ask_forget(ctx: Ctx, _args: str = "") -> list[Reply]:
    rows = (
        ((ctx.t("privacy.forget_yes"), ForgetAnswer("yes").data),),
        ((ctx.t("privacy.forget_no"), ForgetAnswer("no").data),),
    )
    return [ctx.reply("privacy.forget_confirm", buttons=rows)]


def answer_forget(ctx: Ctx, pressed: ForgetAnswer) -> list[Reply]:
    if pressed.answer != "yes":
        return [main_menu(ctx, "privacy.forget_kept")]
    said = ctx.reply("privacy.forgotten")  # in the chat's language, before its state goes
    end(ctx)
    ctx.store.residents.forget(ctx.chat, ctx.now, "resident")
    ctx.state.clear()
    ctx.state[FORGOTTEN] = True
    return [said]


# --- /hide N P (staff) -------------------------------------------------------------------------------------
def hide_photo(ctx: Ctx, args: str) -> list[Reply]:
    """`/hide TICKET N`: staff of the ticket's organisation, or a dispatcher, hide its N-th photo (a face, a
    licence plate) from residents and every public view or export; the organisation still sees it."""
    parts = args.split()
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 12 for p in parts):
        staff.staff_member(ctx)  # not staff: refused as such, before any word about the syntax
        return [ctx.reply("privacy.hide_usage")]
    number, position = int(parts[0]), int(parts[1])
    staff.authorise(ctx, number, dispatch=True)
    if not ctx.store.residents.hide_photo(number, position, ctx.now, "staff"):
        return [ctx.reply("privacy.hide_missing", number=number, position=position)]
    return [ctx.reply("privacy.hidden", number=number, position=position)]


def about_privacy(ctx: Ctx, _args: str = "") -> list[Reply]:
    """`/privacy`: the notice again, with the answer on record, and what the resident can do."""
    return [notice(ctx), ctx.reply("privacy.commands")]


COMMANDS: Final = {"privacy": about_privacy, "mydata": my_data, "forget": ask_forget, "hide": hide_photo}
ACTIONS: Final = {ConsentAnswer: answer_consent, ForgetAnswer: answer_forget}
