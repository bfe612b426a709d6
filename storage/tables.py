"""SQLAlchemy tables. One metadata for the app and for alembic (migrations/env.py reads it)."""

from __future__ import annotations

from datetime import datetime

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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger autoincrement keys that still autoincrement on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class DialogRow(Base):
    """Conversation state per chat: the engine's only memory between updates."""

    __tablename__ = "dialogs"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class ProcessedEventRow(Base):
    """Delivery ids already handled: a repeated Telegram update_id / VK event_id is a no-op. Keyed by the
    bot (Telegram bot id, VK community id) too: update_ids of two bots on one database collide."""

    __tablename__ = "processed_events"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    bot: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    event_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class MunicipalityRow(Base):
    """The loaded configuration document (normalised TOML as JSON); one row."""

    __tablename__ = "municipality"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict] = mapped_column(JSON)
    checksum: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(Timestamp)


class CategoryRow(Base):
    __tablename__ = "categories"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name_ru: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    sla_days: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OrganisationRow(Base):
    __tablename__ = "organisations"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PhotoRow(Base):
    __tablename__ = "photos"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class TicketRow(Base):
    __tablename__ = "tickets"
    number: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    subcategory_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str] = mapped_column(Text, default="")
    location_source: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    author_channel: Mapped[str] = mapped_column(String(16))
    author_chat_id: Mapped[str] = mapped_column(String(64))
    author_user_id: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="ru")
    organisation_code: Mapped[str | None] = mapped_column(ForeignKey("organisations.code"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    deadline: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    taken_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    overdue_notified: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index(None, "author_channel", "author_chat_id", "number"),
        Index(None, "organisation_code", "status"),
        Index(None, "category_code", "lat", "lon"),  # nearby search: a bounding box per category
        Index(None, "lat", "lon"),  # the web's map: what is in view, whatever the category
        Index(None, "created_at"),  # the web's period filters, the dashboard, Open311's date windows
        # A resident rates 1–5 or not at all; the database refuses anything else, whatever the code does.
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
    )


class TicketPhotoRow(Base):
    __tablename__ = "ticket_photos"
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("photos.sha256"))
    kind: Mapped[str] = mapped_column(String(16), default="report")
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    """Hidden by staff (a face, a licence plate): kept for the organisation, never shown to residents or in
    any public view or export (`otklik photos hide`)."""


class TicketEventRow(Base):
    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(Timestamp)
    actor: Mapped[str] = mapped_column(String(140))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    photos: Mapped[list] = mapped_column(JSON, default=list)
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class SupporterRow(Base):
    """A resident who joined a ticket as the same problem ("me too"): a supporter, told what the author is."""

    __tablename__ = "supporters"
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="ru")
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (Index(None, "channel", "chat_id"),)


class GeocodeCacheRow(Base):
    """Geocoder answers by request, so that a repeated lookup costs no call to a rate-limited service."""

    __tablename__ = "geocode_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of `request`
    request: Mapped[str] = mapped_column(Text)  # provider | kind | language | query or point
    places: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class StaffRow(Base):
    """A person working through the bot for an organisation: (channel, user) bound by `/staff CODE`."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    organisation_code: Mapped[str] = mapped_column(ForeignKey("organisations.code"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="ru")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_at: Mapped[datetime] = mapped_column(Timestamp)
    removed_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    """`otklik staff remove`: access ended then (`active` false); the row stays so history keeps the name."""

    __table_args__ = (UniqueConstraint("channel", "user_id"),)


class StaffInviteRow(Base):
    """A one-time code from `otklik staff invite`; only its sha256 is kept."""

    __tablename__ = "staff_invites"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation_code: Mapped[str] = mapped_column(ForeignKey("organisations.code"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    used_by: Mapped[str | None] = mapped_column(String(140), nullable=True)


class StaffCodeAttemptRow(Base):
    """A wrong `/staff CODE` try: at most a few per chat per hour (core/staffing.py). In the database so a
    restart does not reset the count and every process on PostgreSQL sees it; older rows are pruned."""

    __tablename__ = "staff_code_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (Index(None, "channel", "chat_id", "at"), Index(None, "at"))


class OutboxRow(Base):
    """A message to someone other than the sender, written in the transaction that caused it (DESIGN.md §6).

    `status`: pending → sent, or dead after too many failures. A claimed row stays pending with
    `next_attempt_at` pushed forward by a short lease, renewed while the delivery runs, so a crashed
    worker's rows are retried soon."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    backoff_since: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    """When the transient failure that holds the row back happened (null: not a lease, not the platform's
    retry_after): a success on the channel that started after it makes the row due at once."""
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "channel", "chat_id", "status", "id"),
    )


class InboxColumns:
    """A channel's store of delivered messages, each a reply's payload for one chat, unread until `read_at`
    (the console's and the widget's inboxes are alike)."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    read_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class ConsoleInboxRow(InboxColumns, Base):
    """Messages delivered to console users, printed by `otklik chat --user ID` when it starts."""

    __tablename__ = "console_inbox"

    __table_args__ = (Index(None, "chat_id", "read_at"),)


class ChannelPhotoRow(Base):
    """A stored photo's id on a channel (VK attachment, Telegram file_id): uploaded once, then reused."""

    __tablename__ = "channel_photos"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("photos.sha256"), primary_key=True)
    remote_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class Open311KeyRow(Base):
    """A partner system's Open311 API key (`otklik open311 keys add`): only the key's sha256 is kept."""

    __tablename__ = "open311_keys"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    can_write: Mapped[bool] = mapped_column(Boolean, default=True)
    rate_per_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class Open311SubmissionRow(Base):
    """What an Open311 POST brought besides the ticket: its media link and the optional person fields, which
    are personal data — kept apart from the ticket and never shown by a GET."""

    __tablename__ = "open311_submissions"
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), primary_key=True)
    key_name: Mapped[str] = mapped_column(ForeignKey("open311_keys.name"), index=True)
    media_url: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    device_id: Mapped[str] = mapped_column(String(64), default="")
    account_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp)


# Open311's public reads: the default window of `GET requests` (by creation time) and the updates extension
# (events by time) stay index range scans at 100k tickets. Declared here, after the tables, to keep the
# Open311 schema in one place.
Index("ix_ticket_events_at", TicketEventRow.__table__.c.at)


class WidgetInboxRow(InboxColumns, Base):
    """Messages the outbox delivered to widget residents: streamed to an open panel at once, kept for the next
    visit (`read_at` empty: the unread badge). `chat_id` is a hash of the resident's token, not the token."""

    __tablename__ = "widget_inbox"

    __table_args__ = (Index(None, "chat_id", "id"),)


class ResidentRow(Base):
    """A resident's personal-data record per chat (152-ФЗ): whether they agreed to the notice, which version
    of it, and when. `/forget` deletes the row with everything else that names the chat."""

    __tablename__ = "residents"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    consent: Mapped[bool] = mapped_column(Boolean)
    """True: agreed; False: declined (they may read help but not file)."""
    consent_version: Mapped[str] = mapped_column(String(32))
    consent_at: Mapped[datetime] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class PrivacyLogRow(Base):
    """What was done to personal data and when (forget, data export, retention), without naming anyone: an
    operator can show that a request was honoured without keeping the data it removed."""

    __tablename__ = "privacy_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(16))  # forget | mydata | retention | photo_hidden
    source: Mapped[str] = mapped_column(String(16))  # resident | operator | timer | staff
    channel: Mapped[str] = mapped_column(String(16), default="")
    tickets: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class StaffTokenColumns:
    """A secret handed to a staff member, kept as its sha256 only, valid until `expires_at`. A table's own
    columns come after these (`sort_order=1`), as the migrations made them."""

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)


class WebLinkRow(StaffTokenColumns, Base):
    """A one-time sign-in link to the city's web (`/web` in the bot, `otklik web link`); only its sha256 is
    kept, so a copy of the database signs nobody in."""

    __tablename__ = "web_links"
    used_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True, sort_order=1)


class WebSessionRow(StaffTokenColumns, Base):
    """A browser session opened by a sign-in link; the cookie holds the token, the row its sha256. Ended by
    sign-out, by its expiry, or when the person's staff access ends."""

    __tablename__ = "web_sessions"
    ended_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True, sort_order=1)


class RateSlotRow(Base):
    """A platform's shared send rate (DESIGN.md §12): the next free moment for a call on `name` (a channel's
    bot), booked by every worker in turn, so N workers together stay under one bot's limit."""

    __tablename__ = "rate_slots"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(Timestamp)


# --- the tables for SQLAlchemy Core statements, each under its SQL name, so every module says the same ------
dialogs = DialogRow.__table__
processed_events = ProcessedEventRow.__table__
photos = PhotoRow.__table__
tickets = TicketRow.__table__
ticket_photos = TicketPhotoRow.__table__
ticket_events = TicketEventRow.__table__
supporters = SupporterRow.__table__
geocode_cache = GeocodeCacheRow.__table__
staff = StaffRow.__table__
staff_invites = StaffInviteRow.__table__
staff_code_attempts = StaffCodeAttemptRow.__table__
outbox = OutboxRow.__table__
console_inbox = ConsoleInboxRow.__table__
channel_photos = ChannelPhotoRow.__table__
open311_keys = Open311KeyRow.__table__
open311_submissions = Open311SubmissionRow.__table__
widget_inbox = WidgetInboxRow.__table__
residents = ResidentRow.__table__
privacy_log = PrivacyLogRow.__table__
web_links = WebLinkRow.__table__
web_sessions = WebSessionRow.__table__


# --- long-poll positions (DESIGN.md §12): the leader on any host resumes where the previous one stopped ----
poll_positions = Table(
    "poll_positions",
    Base.metadata,
    Column("name", String(64), primary_key=True),
    Column("position", Text, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)
"""Where a platform's long poll stopped (`name`: the channel and its bot, e.g. "vk:<community id>"), written
only after the events before it were handled, so the next leader picks up there (bots/vk/polling.py)."""
