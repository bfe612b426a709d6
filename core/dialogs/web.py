"""`/web`: a staff member, dispatcher or admin asks the bot for a one-time link to the city's web
(core/weblogin.py); a resident is told it is for city staff."""

from __future__ import annotations

from core import weblogin
from core.context import Ctx
from core.dialogs.staff import member
from core.messages import Reply


def web_link(ctx: Ctx, _args: str) -> list[Reply]:
    me = member(ctx)
    if me is None:
        return [ctx.reply("web.bot.only_staff")]
    made = weblogin.new_link(ctx.store, me, ctx.web_url, ctx.now)
    minutes = int(weblogin.LINK_TTL.total_seconds() // 60)
    return [ctx.reply("web.bot.link", url=made.url, minutes=minutes)]


COMMANDS = {"web": web_link}
"""`/web`: the sign-in link."""
