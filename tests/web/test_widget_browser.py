"""The widget in a real headless Chromium: a page of the city's site on another origin embeds it with one
line; a resident files a whole report (category, a click on the map, description, a photo from the file
chooser, submit) and gets the ticket number; the site's CSS does not reach the panel; a staff comment
arrives live in the open panel; a closed panel shows an unread badge on the next visit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from bots.app import App
from core.texts import t
from tests.fakes.images import photo
from tests.support import Resident, Staff, stored_photo, submit_report
from tests.widget_support import Site, deliver, identity, site, staff_comment, widget, widget_app

__all__ = ["site", "widget", "widget_app"]

WAIT = 15_000  # ms: bounded waits for the server's answers and the live stream


def bot_messages(page: Any) -> Any:
    return page.locator("otklik-widget .msg.bot")


async def press(page: Any, label: str) -> None:
    """Press a button of the latest answer that shows this label."""
    await bot_messages(page).last.locator(".choice", has_text=label).first.click()


async def wait_for_text(page: Any, text: str) -> None:
    await expect(bot_messages(page).filter(has_text=text).last).to_be_visible(timeout=WAIT)


async def open_site(browser: Any, site: Site, **context: Any) -> tuple[Any, Any]:
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    await page.goto(site.url + "/")
    return ctx, page


async def test_a_resident_files_a_whole_report_from_the_city_site(
    browser: Any, site: Site, widget: str, widget_app: App, tmp_path: Path
) -> None:
    picture = tmp_path / "pothole.jpg"
    picture.write_bytes(photo(3000, 2000))
    ctx, page = await open_site(browser, site)
    launcher = page.locator("otklik-widget .launcher")
    await launcher.click()
    await wait_for_text(page, t("ru", "menu.welcome")[:30])

    # the site's CSS stops at the shadow root
    text_colour = await bot_messages(page).first.evaluate("e => getComputedStyle(e).color")
    assert text_colour != "rgb(255, 0, 0)"
    send_button = page.locator("otklik-widget .send")
    await expect(send_button).to_be_visible()

    await press(page, t("ru", "menu.new").split()[-1])
    await wait_for_text(page, t("ru", "report.category.ask")[:20])
    await bot_messages(page).last.locator(".choice").first.click()  # a category
    await expect(bot_messages(page)).to_have_count(4, timeout=WAIT)
    await bot_messages(page).last.locator(".choice").first.click()  # its first subcategory
    await wait_for_text(page, t("ru", "report.location.ask")[:20])

    await press(page, t("ru", "widget.ui.map"))
    frame = page.frame_locator("otklik-widget iframe")
    await frame.locator("#map").click()  # the middle of the city's bounds
    await frame.locator("#confirm").click()
    await wait_for_text(page, t("ru", "report.description.ask")[:20])

    await page.locator("otklik-widget .text").fill("Глубокая яма у остановки, машины объезжают по встречной.")
    await send_button.click()
    await wait_for_text(page, t("ru", "report.photos.ask", max=5)[:20])

    async with page.expect_file_chooser() as chooser:
        await page.locator("otklik-widget .attach").click()
    await (await chooser.value).set_files(str(picture))
    await expect(bot_messages(page).last).to_contain_text("1", timeout=WAIT)
    await bot_messages(page).last.locator(".choice").first.click()  # done with photos
    await wait_for_text(page, t("ru", "report.review.ask")[:20])
    await bot_messages(page).last.locator(".choice").first.click()  # submit
    submitted = bot_messages(page).filter(has_text="№").last
    await expect(submitted).to_be_visible(timeout=WAIT)
    number = int(re.search(r"№\s*(\d+)", await submitted.inner_text()).group(1))  # type: ignore[union-attr]

    ticket = await widget_app.db.run(lambda uow: uow.tickets.get(number))
    assert (
        ticket is not None
        and ticket.lat is not None
        and widget_app.engine.municipality.contains(ticket.lat, ticket.lon)
    )
    assert len(ticket.photos) == 1
    stored = widget_app.photos.read(ticket.photos[0])
    assert stored[:2] == b"\xff\xd8"

    # a staff comment arrives live in the open panel
    await staff_comment(widget_app, number, "Бригада выедет завтра утром.")
    assert await deliver(widget_app) >= 1
    await wait_for_text(page, "Бригада выедет завтра утром.")

    # panel closed, page gone; another comment comes; the next visit shows the unread badge
    await page.locator("otklik-widget .close").click()
    await page.close()
    await staff_comment(widget_app, number, "Яму засыпали щебнем.")
    assert await deliver(widget_app) >= 1
    page = await ctx.new_page()
    await page.goto(site.url + "/")
    badge = page.locator("otklik-widget .badge")
    await expect(badge).to_have_text("1", timeout=WAIT)
    await page.locator("otklik-widget .launcher").click()
    await wait_for_text(page, "Яму засыпали щебнем.")
    await expect(badge).to_be_hidden()
    await ctx.close()


async def test_the_chat_page_speaks_english_and_takes_the_browsers_location(
    browser: Any, widget: str, widget_app: App
) -> None:
    ctx = await browser.new_context(
        geolocation={"latitude": 52.2870, "longitude": 104.2810}, permissions=["geolocation"]
    )
    page = await ctx.new_page()
    await page.goto(widget + "/chat?lang=en")
    await wait_for_text(page, t("en", "menu.welcome")[:30])
    await expect(page.locator("otklik-widget .launcher")).to_be_hidden()  # the page is the panel
    await press(page, t("en", "menu.new").split()[-1])
    await wait_for_text(page, t("en", "report.category.ask")[:20])
    await bot_messages(page).last.locator(".choice").first.click()
    await expect(bot_messages(page)).to_have_count(4, timeout=WAIT)
    await bot_messages(page).last.locator(".choice").first.click()
    await wait_for_text(page, t("en", "report.location.ask")[:20])
    await press(page, t("en", "widget.ui.my_location"))
    await wait_for_text(page, t("en", "report.description.ask", min=10, count=2000)[:20])
    await expect(page.locator("otklik-widget .msg.me").last).to_contain_text("52.28700, 104.28100")

    # a reload keeps the conversation and asks the pending question again
    await page.reload()
    await expect(page.locator("otklik-widget .msg.me").filter(has_text="52.28700")).to_have_count(1)
    await expect(bot_messages(page).last).to_contain_text(
        t("en", "report.description.ask", min=10, count=2000)[:20], timeout=WAIT
    )
    await ctx.close()


async def test_the_completion_photo_arrives_live_and_the_resident_rates_five(
    browser: Any, site: Site, widget: str, widget_app: App
) -> None:
    engine = widget_app.engine
    token = identity(widget_app).issue()
    chat_id = identity(widget_app).chat_id(token)
    assert chat_id is not None
    resident = Resident(engine, chat_id, channel="widget")
    number = await submit_report(resident)

    ctx = await browser.new_context()
    saved = json.dumps({"token": token, "lastId": 0, "log": []})
    await ctx.add_init_script(
        f"localStorage.setItem({json.dumps('otklik-widget:' + widget)}, {json.dumps(saved)})"
    )
    page = await ctx.new_page()
    await page.goto(site.url + "/")
    await page.locator("otklik-widget .launcher").click()
    await expect(bot_messages(page).first).to_be_visible(timeout=WAIT)

    staff = Staff(engine, "9001", channel="telegram")  # the organisation's staff, in their messenger
    await staff.join("roads_service")
    await staff.send(button=f"st:take:{number}")
    await staff.send(button=f"st:res:{number}")
    await staff.photos(await stored_photo(engine, widget_app.photos, (0, 150, 0)))
    await staff.send(button="res:done")
    await staff.send(button="res:skip")
    await staff.expect("staff.resolve.done")
    assert await deliver(widget_app) >= 2  # "taken" and "resolved, with the photo"

    notice = bot_messages(page).filter(has=page.locator("img")).last
    await expect(notice.locator("img")).to_have_attribute("src", re.compile("^blob:"), timeout=WAIT)
    assert await notice.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    await notice.locator(".choice").filter(has_text=re.compile("^5")).first.click()
    await wait_for_text(page, t("ru", "verdict.thanks", rating=5, number=number))
    ticket = await widget_app.db.run(lambda uow: uow.tickets.get(number))
    assert ticket is not None and ticket.rating == 5
    await ctx.close()
