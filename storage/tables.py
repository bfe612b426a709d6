"""SQLAlchemy Core tables, each under its SQL name. One `metadata` for the app and for alembic
(migrations/env.py reads it).

Plain `Table` objects, no ORM mapping: every module speaks Core statements, and the admin commands start
without importing `sqlalchemy.orm` (issue 17: that import and the mapping cost ~0.1 s per command).
Columns are NOT NULL unless said (`column`), in the order the migrations created them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# BigInteger autoincrement keys that still autoincrement on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)


def column(name: str, *args: Any, nullable: bool = False, **kwargs: Any) -> Column[Any]:
    """A column, NOT NULL unless `nullable=True`: most columns are required, so that is the default here
    (Core's own default is the opposite). A column given only a ForeignKey takes the referenced type."""
    return Column(name, *args, nullable=nullable, **kwargs)


def big_id() -> Column[Any]:
    """An autoincrementing BigInteger key (Integer on SQLite, where only that autoincrements)."""
    return column("id", BigId, primary_key=True, autoincrement=True)


# Conversation state per chat: the engine's only memory between updates.
dialogs = Table(
    "dialogs",
    metadata,
    column("channel", String(16), primary_key=True),
    column("chat_id", String(64), primary_key=True),
    column("user_id", String(64), default=""),
    column("state", Text, default="{}"),
    column("updated_at", Timestamp),
)

# Delivery ids already handled: a repeated Telegram update_id / VK event_id is a no-op. Keyed by the bot
# (Telegram bot id, VK community id) too: update_ids of two bots on one database collide.
processed_events = Table(
    "processed_events",
    metadata,
    column("channel", String(16), primary_key=True),
    column("bot", String(32), primary_key=True, default=""),
    column("event_key", String(128), primary_key=True),
    column("at", Timestamp, index=True),
)

# The loaded configuration document (normalised TOML as JSON); one row.
municipality = Table(
    "municipality",
    metadata,
    column("id", Integer, primary_key=True),
    column("code", String(64)),
    column("document", JSON),
    column("checksum", String(64)),
    column("loaded_at", Timestamp),
)

categories = Table(
    "categories",
    metadata,
    column("code", String(64), primary_key=True),
    column("parent_code", String(64), nullable=True),
    column("name_ru", String(200)),
    column("name_en", String(200)),
    column("sla_days", Integer),
    column("position", Integer, default=0),
    column("active", Boolean, default=True),
)

organisations = Table(
    "organisations",
    metadata,
    column("code", String(64), primary_key=True),
    column("name_ru", String(300)),
    column("name_en", String(300)),
    column("kind", String(16)),
    column("active", Boolean, default=True),
)

photos = Table(
    "photos",
    metadata,
    column("sha256", String(64), primary_key=True),
    column("content_type", String(32)),
    column("size", Integer),
    column("width", Integer),
    column("height", Integer),
    column("created_at", Timestamp),
)

tickets = Table(
    "tickets",
    metadata,
    column("number", BigId, primary_key=True, autoincrement=True),
    column("category_code", ForeignKey("categories.code")),
    column("subcategory_code", ForeignKey("categories.code"), nullable=True),
    column("lat", Float, nullable=True),
    column("lon", Float, nullable=True),
    column("address", Text, default=""),
    column("location_source", String(16)),
    column("description", Text),
    column("author_channel", String(16)),
    column("author_chat_id", String(64)),
    column("author_user_id", String(64), default=""),
    column("language", String(8), default="ru"),
    column("organisation_code", ForeignKey("organisations.code"), nullable=True),
    column("status", String(16), index=True),
    column("rating", Integer, nullable=True),
    column("created_at", Timestamp),
    column("updated_at", Timestamp),
    column("deadline", Timestamp, nullable=True),
    column("taken_by", ForeignKey("staff.id"), nullable=True),
    column("resolved_at", Timestamp, nullable=True),
    column("overdue_notified", Boolean, default=False),
    Index(None, "author_channel", "author_chat_id", "number"),
    Index(None, "organisation_code", "status"),
    # Nearby search: a bounding box per category among the open tickets only (one range per open status), so
    # that the closed ones a busy spot gathers over the years are never read.
    Index(None, "category_code", "status", "lat", "lon"),
    Index(None, "lat", "lon"),  # the web's map: what is in view, whatever the category
    Index(None, "created_at"),  # the web's period filters, the dashboard, Open311's date windows
    # A resident rates 1–5 or not at all; the database refuses anything else, whatever the code does.
    CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
)

ticket_photos = Table(
    "ticket_photos",
    metadata,
    column("ticket_number", ForeignKey("tickets.number"), primary_key=True),
    column("position", Integer, primary_key=True),
    column("sha256", ForeignKey("photos.sha256")),
    column("kind", String(16), default="report"),
    # Hidden by staff (a face, a licence plate): kept for the organisation, never shown to residents or in
    # any public view or export (`otklik photos hide`).
    column("hidden", Boolean, default=False, server_default="0"),
)

ticket_events = Table(
    "ticket_events",
    metadata,
    big_id(),
    column("ticket_number", ForeignKey("tickets.number"), index=True),
    column("action", String(16)),
    column("at", Timestamp),
    column("actor", String(140)),
    column("from_status", String(16), nullable=True),
    column("to_status", String(16)),
    column("comment", Text, default=""),
    column("photos", JSON, default=list),
    column("data", JSON, default=dict),
)

# A resident who joined a ticket as the same problem ("me too"): a supporter, told what the author is.
supporters = Table(
    "supporters",
    metadata,
    column("ticket_number", ForeignKey("tickets.number"), primary_key=True),
    column("channel", String(16), primary_key=True),
    column("chat_id", String(64), primary_key=True),
    column("user_id", String(64), default=""),
    column("language", String(8), default="ru"),
    column("created_at", Timestamp),
    Index(None, "channel", "chat_id"),
)

# Geocoder answers by request, so that a repeated lookup costs no call to a rate-limited service.
geocode_cache = Table(
    "geocode_cache",
    metadata,
    column("key", String(64), primary_key=True),  # sha256 of `request`
    column("request", Text),  # provider | kind | language | query or point
    column("places", JSON, default=list),
    column("created_at", Timestamp, index=True),
)

# A person working through the bot for an organisation: (channel, user) bound by `/staff CODE`.
staff = Table(
    "staff",
    metadata,
    big_id(),
    column("channel", String(16)),
    column("user_id", String(64)),
    column("chat_id", String(64)),
    column("organisation_code", ForeignKey("organisations.code"), index=True),
    column("role", String(16)),
    column("name", String(200), default=""),
    column("language", String(8), default="ru"),
    column("active", Boolean, default=True),
    column("joined_at", Timestamp),
    # `otklik staff remove`: access ended then (`active` false); the row stays so history keeps the name.
    column("removed_at", Timestamp, nullable=True),
    UniqueConstraint("channel", "user_id"),
)

# A one-time code from `otklik staff invite`; only its sha256 is kept.
staff_invites = Table(
    "staff_invites",
    metadata,
    column("code_hash", String(64), primary_key=True),
    column("organisation_code", ForeignKey("organisations.code")),
    column("role", String(16)),
    column("created_at", Timestamp),
    column("expires_at", Timestamp),
    column("used_at", Timestamp, nullable=True),
    column("used_by", String(140), nullable=True),
)

# A wrong `/staff CODE` try: at most a few per chat per hour (core/staffing.py). In the database so a restart
# does not reset the count and every process on PostgreSQL sees it; older rows are pruned.
staff_code_attempts = Table(
    "staff_code_attempts",
    metadata,
    big_id(),
    column("channel", String(16)),
    column("chat_id", String(64)),
    column("at", Timestamp),
    Index(None, "channel", "chat_id", "at"),
    Index(None, "at"),
)

# A message to someone other than the sender, written in the transaction that caused it (DESIGN.md §6).
# `status`: pending → sent, or dead after too many failures. A claimed row stays pending with
# `next_attempt_at` pushed forward by a short lease, renewed while the delivery runs, so a crashed worker's
# rows are retried soon.
outbox = Table(
    "outbox",
    metadata,
    big_id(),
    column("channel", String(16)),
    column("chat_id", String(64)),
    column("user_id", String(64), default=""),
    column("payload", JSON),
    column("status", String(8), default="pending"),
    column("attempts", Integer, default=0),
    column("next_attempt_at", Timestamp),
    # When the transient failure that holds the row back happened (null: not a lease, not the platform's
    # retry_after): a success on the channel that started after it makes the row due at once.
    column("backoff_since", Timestamp, nullable=True),
    column("created_at", Timestamp),
    column("sent_at", Timestamp, nullable=True),
    column("last_error", Text, default=""),
    Index(None, "status", "next_attempt_at"),
    Index(None, "channel", "chat_id", "status", "id"),
    # Each status's rows by chat: `SqlOutbox.claim` steps from one chat with pending rows to the next through
    # it, however long the backlog (storage/outbox.py, `_heads`). (A partial index of the pending rows would
    # be smaller, but declaring one loads SQLAlchemy's PostgreSQL dialect into every admin command.)
    Index(None, "channel", "status", "chat_id", "id"),
)


def inbox_columns() -> list[Column[Any]]:
    """A channel's store of delivered messages, each a reply's payload for one chat, unread until `read_at`
    (the console's and the widget's inboxes are alike). Fresh columns per call: a Column joins one table."""
    return [
        big_id(),
        column("chat_id", String(64)),
        column("payload", JSON),
        column("created_at", Timestamp),
        column("read_at", Timestamp, nullable=True),
    ]


# Messages delivered to console users, printed by `otklik chat --user ID` when it starts.
console_inbox = Table(
    "console_inbox",
    metadata,
    *inbox_columns(),
    Index(None, "chat_id", "read_at"),
)

# A stored photo's id on a channel (VK attachment, Telegram file_id): uploaded once, then reused.
channel_photos = Table(
    "channel_photos",
    metadata,
    column("channel", String(16), primary_key=True),
    column("sha256", ForeignKey("photos.sha256"), primary_key=True),
    column("remote_id", String(255)),
    column("created_at", Timestamp),
)

# A partner system's Open311 API key (`otklik open311 keys add`): only the key's sha256 is kept.
open311_keys = Table(
    "open311_keys",
    metadata,
    column("name", String(40), primary_key=True),
    column("key_hash", String(64), unique=True),
    column("can_write", Boolean, default=True),
    column("rate_per_minute", Integer),
    column("created_at", Timestamp),
    column("revoked_at", Timestamp, nullable=True),
)

# What an Open311 POST brought besides the ticket: its media link and the optional person fields, which are
# personal data — kept apart from the ticket and never shown by a GET.
open311_submissions = Table(
    "open311_submissions",
    metadata,
    column("ticket_number", ForeignKey("tickets.number"), primary_key=True),
    column("key_name", ForeignKey("open311_keys.name"), index=True),
    column("media_url", Text, default=""),
    column("email", String(254), default=""),
    column("first_name", String(100), default=""),
    column("last_name", String(100), default=""),
    column("phone", String(32), default=""),
    column("device_id", String(64), default=""),
    column("account_id", String(64), default=""),
    column("created_at", Timestamp),
)

# Open311's public reads: the default window of `GET requests` (by creation time) and the updates extension
# (events by time) stay index range scans at 100k tickets. Declared here, after the tables, to keep the
# Open311 schema in one place.
Index("ix_ticket_events_at", ticket_events.c.at)

# Messages the outbox delivered to widget residents: streamed to an open panel at once, kept for the next
# visit (`read_at` empty: the unread badge). `chat_id` is a hash of the resident's token, not the token.
widget_inbox = Table(
    "widget_inbox",
    metadata,
    *inbox_columns(),
    Index(None, "chat_id", "id"),
)

# A resident's personal-data record per chat (152-ФЗ): whether they agreed to the notice, which version of
# it, and when. `/forget` deletes the row with everything else that names the chat.
residents = Table(
    "residents",
    metadata,
    column("channel", String(16), primary_key=True),
    column("chat_id", String(64), primary_key=True),
    column("user_id", String(64), default=""),
    column("consent", Boolean),  # True: agreed; False: declined (they may read help but not file)
    column("consent_version", String(32)),
    column("consent_at", Timestamp),
    column("created_at", Timestamp),
)

# What was done to personal data and when (forget, data export, retention), without naming anyone: an
# operator can show that a request was honoured without keeping the data it removed.
privacy_log = Table(
    "privacy_log",
    metadata,
    big_id(),
    column("action", String(16)),  # forget | mydata | retention | photo_hidden
    column("source", String(16)),  # resident | operator | timer | staff
    column("channel", String(16), default=""),
    column("tickets", Integer, default=0),
    column("at", Timestamp, index=True),
)


def staff_token_columns() -> list[Column[Any]]:
    """A secret handed to a staff member, kept as its sha256 only, valid until `expires_at`. A table's own
    columns come after these, as the migrations made them. Fresh columns per call: a Column joins one
    table."""
    return [
        column("token_hash", String(64), primary_key=True),
        column("staff_id", ForeignKey("staff.id"), index=True),
        column("created_at", Timestamp),
        column("expires_at", Timestamp),
    ]


# A one-time sign-in link to the city's web (`/web` in the bot, `otklik web link`); only its sha256 is kept,
# so a copy of the database signs nobody in.
web_links = Table(
    "web_links",
    metadata,
    *staff_token_columns(),
    column("used_at", Timestamp, nullable=True),
)

# A browser session opened by a sign-in link; the cookie holds the token, the row its sha256. Ended by
# sign-out, by its expiry, or when the person's staff access ends.
web_sessions = Table(
    "web_sessions",
    metadata,
    *staff_token_columns(),
    column("ended_at", Timestamp, nullable=True),
)

# A platform's shared send rate (DESIGN.md §12): the next free moment for a call on `name` (a channel's bot),
# booked by every worker in turn, so N workers together stay under one bot's limit.
rate_slots = Table(
    "rate_slots",
    metadata,
    column("name", String(64), primary_key=True),
    column("next_at", Timestamp),
)


# Where a platform's long poll stopped (`name`: the channel and its bot, e.g. "vk:<community id>"), written
# only after the events before it were handled, so the next leader, on any host, picks up there
# (bots/vk/polling.py).
poll_positions = Table(
    "poll_positions",
    metadata,
    column("name", String(64), primary_key=True),
    column("position", Text),
    column("updated_at", Timestamp),
)
