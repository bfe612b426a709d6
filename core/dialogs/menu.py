"""The resident's main menu, *My reports* and a ticket's details with its history."""

from __future__ import annotations

from core.buttons import Language, Menu, MyTicket
from core.context import Ctx
from core.dialogs import verdict
from core.dialogs.report import category_label, describe_place
from core.domain.tickets import Ticket
from core.messages import Button, Reply
from core.ports import TicketSummary
from core.texts import LANGUAGES

MY_REPORTS_LIMIT = 10
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}


def main_menu(ctx: Ctx, key: str = "menu.prompt") -> Reply:
    return ctx.reply(
        key,
        buttons=(
            ((ctx.t("menu.new"), Menu("new").data),),
            ((ctx.t("menu.mine"), Menu("mine").data),),
            ((ctx.t("menu.help"), Menu("help").data), (ctx.t("menu.language"), Menu("language").data)),
        ),
    )


def language_menu(ctx: Ctx) -> Reply:
    row: tuple[Button, ...] = tuple((LANGUAGE_NAMES[code], Language(code).data) for code in LANGUAGES)
    return ctx.reply("language.ask", buttons=(row,))


def my_reports(ctx: Ctx) -> Reply:
    """The resident's own reports and the ones they joined ("me too"), marked; a ticket waiting for the
    resident's verdict is marked too: opening it offers the verdict buttons again."""
    tickets = ctx.store.tickets.of(ctx.chat, MY_REPORTS_LIMIT)
    if not tickets:
        return main_menu(ctx, "mine.empty")
    rows = tuple(((_mark(ctx, t) + _item(ctx, t), MyTicket(t.number).data),) for t in tickets)
    text = ctx.t("mine.list", count=len(tickets))
    if any(t.joined for t in tickets):
        text += "\n" + ctx.t("mine.joined_legend")
    if any(_awaits(t) for t in tickets):
        text += "\n" + ctx.t("mine.verdict_legend")
    return Reply(text=text, buttons=rows)


def _awaits(t: TicketSummary) -> bool:
    return not t.joined and verdict.awaits_verdict(t.status)


def _mark(ctx: Ctx, t: TicketSummary) -> str:
    if t.joined:
        return ctx.t("mine.joined_mark")
    return ctx.t("mine.verdict_mark") if _awaits(t) else ""


def _item(ctx: Ctx, t: TicketSummary) -> str:
    return ctx.t(
        "mine.item",
        number=t.number,
        category=category_label(ctx, t.category, t.subcategory),
        status=ctx.t(f"status.{t.status.value}"),
    )


def ticket_details(ctx: Ctx, number: int) -> Reply:
    ticket = ctx.store.tickets.get(number)
    if ticket is None:
        return ctx.reply("ticket.not_found")
    author = (ticket.author_channel, ticket.author_chat_id) == (ctx.chat.channel, ctx.chat.chat_id)
    if not author and not ctx.store.supporters.includes(number, ctx.chat):  # supporters see it too
        return ctx.reply("ticket.not_found")
    hint, buttons = verdict.offer(ctx, ticket)  # missed the rating buttons? here they are again
    text = format_ticket(ctx, ticket)
    return Reply(text=f"{text}\n\n{hint}" if hint else text, buttons=buttons)


def format_ticket(ctx: Ctx, ticket: Ticket) -> str:
    org = ctx.municipality.organisation(ticket.organisation)
    history = "\n".join(
        ctx.t(
            "ticket.history_item",
            at=ctx.local(e.at, "datetime"),
            action=ctx.t(f"action.{e.action.value}"),
        )
        + (f": {e.comment}" if e.comment else "")
        for e in ticket.events
    )
    location = {"lat": ticket.lat, "lon": ticket.lon, "address": ticket.address}
    details = ctx.t(
        "ticket.details",
        number=ticket.number,
        status=ctx.t(f"status.{ticket.status.value}"),
        category=category_label(ctx, ticket.category, ticket.subcategory),
        place=describe_place(ctx, location),
        description=ticket.description,
        organisation=org.name(ctx.lang) if org else "—",
        deadline=ctx.local(ticket.deadline),
        created=ctx.local(ticket.created_at, "datetime"),
        history=history or "—",
    )
    if ticket.supporters:  # "me too"
        details += "\n\n" + ctx.t("ticket.support.count", count=ticket.supporters)
    return details
