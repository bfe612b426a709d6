"""Benchmark: one report dialog, the same residents, side by side in one run — aiogram's and
python-telegram-bot's own dispatchers against ours through each library's types.

Every resident files a report in 9 updates (/start, four buttons, a pin, a description, one 1280-pixel photo,
"done", "submit"), steps interleaved across residents, C updates in flight. Variants:
- `aiogram FSM`: aiogram's Dispatcher, a Router with async filters only (sync filters run in a thread) and
  its in-memory FSM storage;
- `PTB conversation`: python-telegram-bot's Application with a ConversationHandler (state in memory);
- `ours/aiogram`, `ours/ptb`: the update's Bot API JSON → our translate → pipeline → engine (the dialog
  saved in SQLite on every update) → sender → aiogram's (PTB's) Bot.
Every variant downloads its photos through its library (getFile and the file's bytes) and stores them with
the photo store (ours also registers them), and renders its replies as its library's Bot calls on a fake
session: no network, but each library's own request building and response parsing (ours reads the answers
to its sends as JSON, not as the library's `Message`). Every variant sends the same messages: what ours
sends at each step (texts and keyboards) is recorded from one resident first, and the peers send exactly
that, their keyboards built once up front. Printed per variant:
updates/s (wall), CPU per update (process_time), the Bot API calls per dialog and the Python memory held per
open dialog (after 5 steps, all dialogs open; tracemalloc, in a separate untimed run, so it also spreads what
a library builds or caches once over the residents), with ours as a ratio of each library's own dispatcher.
Target (issue 17): ours ≥ 1.0× each library's own dispatcher.
Run: `.venv/bin/python bench/peers.py [--residents 300] [--concurrency 16]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bots.telegram.aiogram_import  # noqa: F401  (aiogram as `otklik run` imports it)

# isort: split
from aiogram import Bot as AiogramBot
from aiogram import Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import TelegramMethod
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.types import Message as AiogramMessage
from telegram import Bot as PtbBot
from telegram import InlineKeyboardMarkup as PtbInlineMarkup
from telegram import ReplyKeyboardMarkup as PtbReplyMarkup
from telegram import ReplyKeyboardRemove as PtbReplyRemove
from telegram import Update as PtbUpdate
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData

from bots.telegram import make_api
from bots.telegram.pipeline import Pipeline
from bots.telegram.sender import Limits, TelegramSender
from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.municipality_file import load_toml_file
from storage.database import Database
from storage.migrate import upgrade
from storage.municipality_store import save_municipality
from storage.photos import PhotoStore
from tests.fakes import images

TOKEN = "123456:bench-token"
BOT_ID = 123456
CENTRE = (52.2870, 104.2810)
DESCRIPTION = "Глубокая яма на проезжей части у остановки, машины объезжают по встречной полосе."
STEPS = 9
OPEN_AFTER = 5
UNLIMITED = Limits(chat_rate=1e6, chat_burst=1000, bot_rate=1e6, bot_burst=1000)
PHOTO = images.photo()  # 1280×960
PHOTO_UNIQUE = iter(range(10**9))
Script = dict[int, list[tuple[str, dict[str, Any] | None]]]
SCRIPT: Script = {}
"""What ours sends at each step of the dialog (texts and keyboards, as the Bot API's JSON), recorded from one
resident before the run; the peers send exactly that, so every variant answers with the same messages."""


# --- the fake Bot API: answers each method as Telegram would, counts the calls ------------------------------
class FakeApi:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.message_ids = iter(range(1, 10**9))
        self.step = 0
        self.script: dict[int, list[tuple[str, dict[str, Any] | None]]] | None = None
        """When set, every sendMessage's text and keyboard, by the dialog step that sent it."""

    def respond(self, method: str, params: dict[str, Any]) -> Any:
        self.calls[method] += 1
        if self.script is not None and method == "sendMessage":
            markup = params.get("reply_markup")
            said = (params["text"], json.loads(markup) if isinstance(markup, str) else markup)
            self.script.setdefault(self.step, []).append(said)
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
        if method in ("sendMessage", "sendLocation", "editMessageReplyMarkup", "editMessageText"):
            chat = int(params.get("chat_id") or 0)
            message = {
                "message_id": next(self.message_ids),
                "date": 0,
                "chat": {"id": chat, "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bench"},
            }
            if params.get("text"):
                message["text"] = params["text"]
            markup = params.get("reply_markup")
            if isinstance(markup, str):
                markup = json.loads(markup)
            if isinstance(markup, dict) and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            return message
        if method == "getFile":
            return {
                "file_id": params["file_id"],
                "file_unique_id": "u" + str(params["file_id"]),
                "file_size": len(PHOTO),
                "file_path": f"photos/{params['file_id']}.jpg",
            }
        return True  # answerCallbackQuery, sendChatAction, setMyCommands, deleteWebhook


class FakeAiogramSession(AiohttpSession):
    """aiogram's own session up to the wire: the form is built as for a real request, the answer parsed."""

    def __init__(self, api: FakeApi) -> None:
        super().__init__()
        self.fake = api

    async def make_request(
        self, bot: AiogramBot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        self.build_form_data(bot, method)
        params = {k: getattr(method, k, None) for k in ("chat_id", "text", "file_id")}
        markup = getattr(method, "reply_markup", None)
        if isinstance(markup, InlineKeyboardMarkup):
            params["reply_markup"] = markup.model_dump(exclude_none=True)
        elif isinstance(markup, str):  # ours: the keyboard as the Bot API's JSON
            params["reply_markup"] = markup
        result = self.fake.respond(method.__api_method__, params)
        return self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result})).result

    async def stream_content(self, url: str, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        self.fake.calls["download"] += 1
        yield PHOTO

    async def close(self) -> None:
        return None


class FakePtbRequest(BaseRequest):
    """PTB's request up to the wire: parameters serialised as for a real request, the answer parsed by PTB."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    @property
    def read_timeout(self) -> float:
        return 5.0

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        if "/file/bot" in url:
            self.api.calls["download"] += 1
            return 200, PHOTO
        params = request_data.parameters if request_data is not None else {}
        if request_data is not None:
            request_data.json_payload  # noqa: B018  (the serialisation a real request does)
        result = self.api.respond(url.rsplit("/", 1)[-1], params)
        return 200, json.dumps({"ok": True, "result": result}).encode()


# --- the residents' updates --------------------------------------------------------------------------------
class Resident:
    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.user = {"id": user_id, "is_bot": False, "first_name": "Resident", "language_code": "ru"}
        self.chat = {"id": user_id, "type": "private", "first_name": "Resident"}

    def _message(self, update_id: int, **content: Any) -> dict[str, Any]:
        message = {"message_id": update_id, "date": 0, "chat": self.chat, "from": self.user, **content}
        return {"update_id": update_id, "message": message}

    def _press(self, update_id: int, data: str) -> dict[str, Any]:
        bot = {"id": BOT_ID, "is_bot": True, "first_name": "Bench"}
        message = {"message_id": update_id - 1, "date": 0, "chat": self.chat, "from": bot, "text": "…"}
        callback = {
            "id": str(update_id),
            "from": self.user,
            "chat_instance": "1",
            "data": data,
            "message": message,
        }
        return {"update_id": update_id, "callback_query": callback}

    def update(self, step: int, update_id: int) -> dict[str, Any]:
        if step == 0:
            return self._message(
                update_id, text="/start", entities=[{"type": "bot_command", "offset": 0, "length": 6}]
            )
        if step in (1, 2, 3, 7, 8):
            data = {
                1: "menu:new",
                2: "cat:roads",
                3: "sub:roads.pothole",
                7: "photos:done",
                8: "review:submit",
            }
            return self._press(update_id, data[step])
        if step == 4:
            return self._message(update_id, location={"latitude": CENTRE[0], "longitude": CENTRE[1]})
        if step == 5:
            return self._message(update_id, text=DESCRIPTION)
        unique = next(PHOTO_UNIQUE)
        sizes = [
            {"file_id": f"s{unique}", "file_unique_id": f"us{unique}", "width": 320, "height": 240},
            {"file_id": f"f{unique}", "file_unique_id": f"uf{unique}", "width": 1280, "height": 960,
             "file_size": len(PHOTO)},
        ]  # fmt: skip
        return self._message(update_id, photo=sizes)


# --- aiogram's Dispatcher + FSM ----------------------------------------------------------------------------
class Report(StatesGroup):
    category = State()
    subcategory = State()
    location = State()
    description = State()
    photos = State()
    review = State()


def aiogram_markup(markup: dict[str, Any] | None) -> Any:
    if markup is None:
        return None
    if "inline_keyboard" in markup:
        return InlineKeyboardMarkup.model_validate(markup)
    if "keyboard" in markup:
        return ReplyKeyboardMarkup.model_validate(markup)
    return ReplyKeyboardRemove.model_validate(markup)


def aiogram_router(photos: PhotoStore, script: Script) -> Router:
    router = Router()
    # The keyboards built once, as a bot's constants: in the peers' favour.
    said = {step: [(text, aiogram_markup(m)) for text, m in sent] for step, sent in script.items()}

    async def say(message: AiogramMessage, step: int) -> None:
        for text, markup in said[step]:
            await message.answer(text, reply_markup=markup)

    def command(name: str) -> Callable[[AiogramMessage], Awaitable[bool]]:
        async def check(message: AiogramMessage) -> bool:
            return message.text == "/" + name

        return check

    def data(prefix: str) -> Callable[[CallbackQuery], Awaitable[bool]]:
        async def check(callback: CallbackQuery) -> bool:
            return bool(callback.data and callback.data.startswith(prefix))

        return check

    async def has_location(message: AiogramMessage) -> bool:
        return message.location is not None

    async def has_text(message: AiogramMessage) -> bool:
        return message.text is not None

    async def has_photo(message: AiogramMessage) -> bool:
        return bool(message.photo)

    @router.message(command("start"))
    async def start(message: AiogramMessage, state: FSMContext) -> None:
        await state.clear()
        await say(message, 0)

    @router.callback_query(data("menu:new"))
    async def new(callback: CallbackQuery, state: FSMContext) -> None:
        await callback.answer()
        await state.set_state(Report.category)
        assert isinstance(callback.message, AiogramMessage)
        await say(callback.message, 1)

    @router.callback_query(Report.category, data("cat:"))
    async def category(callback: CallbackQuery, state: FSMContext) -> None:
        await callback.answer()
        await state.update_data(category=callback.data)
        await state.set_state(Report.subcategory)
        assert isinstance(callback.message, AiogramMessage)
        await say(callback.message, 2)

    @router.callback_query(Report.subcategory, data("sub:"))
    async def subcategory(callback: CallbackQuery, state: FSMContext) -> None:
        await callback.answer()
        await state.update_data(subcategory=callback.data)
        await state.set_state(Report.location)
        assert isinstance(callback.message, AiogramMessage)
        await say(callback.message, 3)

    @router.message(Report.location, has_location)
    async def location(message: AiogramMessage, state: FSMContext) -> None:
        assert message.location is not None
        await state.update_data(lat=message.location.latitude, lon=message.location.longitude)
        await state.set_state(Report.description)
        await say(message, 4)

    @router.message(Report.description, has_text)
    async def description(message: AiogramMessage, state: FSMContext) -> None:
        await state.update_data(description=message.text, photos=[])
        await state.set_state(Report.photos)
        await say(message, 5)

    @router.message(Report.photos, has_photo)
    async def photo(message: AiogramMessage, state: FSMContext, bot: AiogramBot) -> None:
        assert message.photo and message.bot is not None
        buffer = await bot.download(message.photo[-1].file_id)
        assert buffer is not None
        stored = await asyncio.get_running_loop().run_in_executor(None, photos.store, buffer.read())
        known = await state.get_data()
        await state.update_data(photos=[*known.get("photos", []), stored.sha256])
        await say(message, 6)

    @router.callback_query(Report.photos, data("photos:done"))
    async def done(callback: CallbackQuery, state: FSMContext) -> None:
        await callback.answer()
        await state.set_state(Report.review)
        assert isinstance(callback.message, AiogramMessage)
        await say(callback.message, 7)

    @router.callback_query(Report.review, data("review:submit"))
    async def submit(callback: CallbackQuery, state: FSMContext) -> None:
        await callback.answer()
        await state.clear()
        assert isinstance(callback.message, AiogramMessage)
        await say(callback.message, 8)

    return router


# --- python-telegram-bot's ConversationHandler -------------------------------------------------------------
def ptb_markup(markup: dict[str, Any] | None) -> Any:
    if markup is None:
        return None
    if "inline_keyboard" in markup:
        return PtbInlineMarkup.de_json(markup, None)
    if "keyboard" in markup:
        return PtbReplyMarkup.de_json(markup, None)
    return PtbReplyRemove.de_json(markup, None)


def ptb_application(
    api: FakeApi, photos: PhotoStore, script: Script
) -> Application[Any, Any, Any, Any, Any, Any]:
    request = FakePtbRequest(api)
    app = (
        Application.builder()
        .token(TOKEN)
        .request(request)
        .get_updates_request(FakePtbRequest(api))
        .updater(None)
        .build()
    )
    # The keyboards built once, as a bot's constants: in the peers' favour.
    said = {step: [(text, ptb_markup(m)) for text, m in sent] for step, sent in script.items()}

    async def say(message: Any, step: int) -> None:
        for text, markup in said[step]:
            await message.reply_text(text, reply_markup=markup)

    CATEGORY, SUBCATEGORY, LOCATION, DESCRIBE, PHOTOS, REVIEW = range(6)
    Context = ContextTypes.DEFAULT_TYPE

    async def start(update: PtbUpdate, context: Context) -> int:
        await say(update.effective_message, 0)
        return ConversationHandler.END

    async def new(update: PtbUpdate, context: Context) -> int:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer()
        await say(query.message, 1)
        return CATEGORY

    def chosen(slot: str, step: int, following: int) -> Callable[[PtbUpdate, Context], Awaitable[int]]:
        """A button step: keep the pressed button's data in `slot`, ask the next question."""

        async def handler(update: PtbUpdate, context: Context) -> int:
            query = update.callback_query
            assert query is not None and query.message is not None and context.user_data is not None
            await query.answer()
            context.user_data[slot] = query.data
            await say(query.message, step)
            return following

        return handler

    category = chosen("category", 2, SUBCATEGORY)
    subcategory = chosen("subcategory", 3, LOCATION)

    async def location(update: PtbUpdate, context: Context) -> int:
        message = update.effective_message
        assert message is not None and message.location is not None and context.user_data is not None
        context.user_data["at"] = (message.location.latitude, message.location.longitude)
        await say(message, 4)
        return DESCRIBE

    async def describe(update: PtbUpdate, context: Context) -> int:
        message = update.effective_message
        assert message is not None and context.user_data is not None
        context.user_data["description"] = message.text
        context.user_data["photos"] = []
        await say(message, 5)
        return PHOTOS

    async def photo(update: PtbUpdate, context: Context) -> int:
        message = update.effective_message
        assert message is not None and message.photo and context.user_data is not None
        file = await context.bot.get_file(message.photo[-1].file_id)
        data = bytes(await file.download_as_bytearray())
        stored = await asyncio.get_running_loop().run_in_executor(None, photos.store, data)
        context.user_data["photos"].append(stored.sha256)
        await say(message, 6)
        return PHOTOS

    async def done(update: PtbUpdate, context: Context) -> int:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer()
        await say(query.message, 7)
        return REVIEW

    async def submit(update: PtbUpdate, context: Context) -> int:
        query = update.callback_query
        assert query is not None and query.message is not None and context.user_data is not None
        await query.answer()
        context.user_data.clear()
        await say(query.message, 8)
        return ConversationHandler.END

    app.add_handler(CommandHandler("start", start))
    app.add_handler(
        ConversationHandler(
            entry_points=[CallbackQueryHandler(new, pattern="^menu:new$")],
            states={
                CATEGORY: [CallbackQueryHandler(category, pattern="^cat:")],
                SUBCATEGORY: [CallbackQueryHandler(subcategory, pattern="^sub:")],
                LOCATION: [MessageHandler(filters.LOCATION, location)],
                DESCRIBE: [MessageHandler(filters.TEXT & ~filters.COMMAND, describe)],
                PHOTOS: [
                    MessageHandler(filters.PHOTO, photo),
                    CallbackQueryHandler(done, pattern="^photos:done$"),
                ],
                REVIEW: [CallbackQueryHandler(submit, pattern="^review:submit$")],
            },
            fallbacks=[],
            per_message=False,
            per_chat=True,
        )
    )
    return app


# --- the run -----------------------------------------------------------------------------------------------
def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Variant:
    """How one variant takes an update (awaited until handled and answered), set up and torn down."""

    name = ""

    def __init__(self, data: Path) -> None:
        self.api = FakeApi()
        self.photos = PhotoStore(data / f"photos-{id(self)}")

    async def start(self) -> None: ...

    async def handle(self, update: dict[str, Any]) -> None: ...

    async def stop(self) -> None: ...


class AiogramFsm(Variant):
    name = "aiogram FSM"

    async def start(self) -> None:
        self.bot = AiogramBot(TOKEN, session=FakeAiogramSession(self.api))
        self.dp = Dispatcher()
        self.dp.include_router(aiogram_router(self.photos, SCRIPT))

    async def handle(self, update: dict[str, Any]) -> None:
        await self.dp.feed_raw_update(self.bot, update)


class PtbConversation(Variant):
    name = "PTB conversation"

    async def start(self) -> None:
        self.app = ptb_application(self.api, self.photos, SCRIPT)
        await self.app.initialize()

    async def handle(self, update: dict[str, Any]) -> None:
        await self.app.process_update(PtbUpdate.de_json(update, self.app.bot))

    async def stop(self) -> None:
        await self.app.shutdown()


class Ours(Variant):
    def __init__(self, data: Path, library: str) -> None:
        super().__init__(data)
        self.library = library
        self.name = f"ours/{library}"
        self.url = f"sqlite:///{data / f'ours-{library}.sqlite3'}"

    async def start(self) -> None:
        upgrade(self.url)
        self.db = Database(self.url)
        municipality = load_toml_file(DEMO_CONFIG_PATH)
        self.db.run_sync(lambda store: save_municipality(store.conn, municipality))
        self.bot_api = make_api(self.library, TOKEN, "http://bot-api.invalid")
        if self.library == "aiogram":
            self.bot_api.bot = AiogramBot(TOKEN, session=FakeAiogramSession(self.api))  # type: ignore[attr-defined]
        else:
            request = FakePtbRequest(self.api)
            self.bot_api.bot = PtbBot(TOKEN, request=request, get_updates_request=request)  # type: ignore[attr-defined]
        await self.bot_api.start()
        engine = Engine(self.db, municipality)
        sender = TelegramSender(self.bot_api, self.db, self.photos, limits=UNLIMITED)
        self.pipeline = Pipeline(
            self.bot_api, engine, self.db, self.photos, sender, album_wait=0.0, album_limit=0.0
        )

    async def handle(self, update: dict[str, Any]) -> None:
        assert await self.pipeline.submit(self.bot_api.parse_update(update))

    async def stop(self) -> None:
        await self.pipeline.close()
        self.tickets = await self.db.run(lambda store: len(store.tickets.list(limit=10**9)))
        self.db.close()


async def record_script(data: Path) -> Script:
    """Ours through PTB, one resident, step by step: what it sends at each step."""
    data.mkdir()
    ours = Ours(data, "ptb")
    await ours.start()
    ours.api.script = {}
    resident = Resident(1)
    for step in range(STEPS):
        ours.api.step = step
        await ours.handle(resident.update(step, step + 1))
    await ours.stop()
    return ours.api.script


async def run(
    variant: Variant, residents: int, concurrency: int, offset: int, *, trace: bool = False
) -> dict[str, float]:
    """One variant's figures. With `trace`, the memory per open dialog is what Python objects the variant
    allocated and still holds after 5 steps (tracemalloc; slow, so such a run is not timed); SQLite's own
    memory, where ours keeps the dialogs, is not Python's and is bounded by its page cache."""
    await variant.start()
    people = [Resident(offset + i) for i in range(residents)]
    update_ids = iter(range(1, 10**9))
    gc.collect()
    if trace:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if trace else rss()
    cpu, wall, open_rss = time.process_time(), time.perf_counter(), 0
    for step in range(STEPS):
        pending = iter(people)

        async def worker(step: int = step, pending: Any = pending) -> None:
            for person in pending:
                await variant.handle(person.update(step, next(update_ids)))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        if step == OPEN_AFTER - 1:
            gc.collect()
            open_rss = tracemalloc.get_traced_memory()[0] if trace else rss()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if trace:
        tracemalloc.stop()
    await variant.stop()
    assert variant.api.calls["sendMessage"] >= residents * 11, "every dialog went to its end"
    assert getattr(variant, "tickets", residents) == residents, "ours filed every report"
    if os.environ.get("BENCH_CALLS"):
        print(variant.name, dict(variant.api.calls))
    calls = sum(variant.api.calls.values()) - variant.api.calls["getMe"]
    updates = residents * STEPS
    return {
        "rate": updates / wall,
        "cpu_ms": 1000 * cpu / updates,
        "calls": calls / residents,
        "per_dialog": (open_rss - base) / residents,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16, help="updates in flight at once")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant, alternating; best kept")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="otklik-bench-peers-") as tmp:
        data = Path(tmp)
        SCRIPT.update(await record_script(data / "script"))
        offset = 1_000_000
        for round_ in range(args.rounds + 1):  # the first round warms every variant up, unmeasured
            for make in (AiogramFsm, lambda d: Ours(d, "aiogram"), PtbConversation, lambda d: Ours(d, "ptb")):
                variant = make(data / f"{round_}")  # type: ignore[operator]
                (data / f"{round_}").mkdir(exist_ok=True)
                figures = await run(variant, args.residents if round_ else 20, args.concurrency, offset)
                offset += args.residents
                if round_:
                    results.setdefault(variant.name, []).append(figures)
        memory: dict[str, float] = {}
        for make in (AiogramFsm, lambda d: Ours(d, "aiogram"), PtbConversation, lambda d: Ours(d, "ptb")):
            variant = make(data / "traced")  # type: ignore[operator]
            (data / "traced").mkdir(exist_ok=True)
            figures = await run(variant, args.residents, args.concurrency, offset, trace=True)
            offset += args.residents
            memory[variant.name] = figures["per_dialog"]
    best = {name: max(runs, key=lambda r: r["rate"]) for name, runs in results.items()}
    cpu_best = {name: min(r["cpu_ms"] for r in runs) for name, runs in results.items()}
    print(
        f"{args.residents} residents × {STEPS} updates, {args.concurrency} in flight, "
        f"best of {args.rounds} alternating rounds"
    )
    print(
        f"{'variant':<18} {'updates/s':>10} {'CPU/update':>11} {'calls/dialog':>13} {'RAM/open dialog':>16}"
    )
    for name, figures in best.items():
        print(
            f"{name:<18} {figures['rate']:>10,.0f} {cpu_best[name]:>8.2f} ms {figures['calls']:>13.1f} "
            f"{memory[name]:>12,.0f} B"
        )
    for ours, peer in (("ours/aiogram", "aiogram FSM"), ("ours/ptb", "PTB conversation")):
        print(
            f"{ours} ÷ {peer}: {best[ours]['rate'] / best[peer]['rate']:.2f}× updates/s, "
            f"{cpu_best[peer] / cpu_best[ours]:.2f}× updates per CPU-second (target ≥ 1.0×)"
        )


if __name__ == "__main__":
    asyncio.run(main())
