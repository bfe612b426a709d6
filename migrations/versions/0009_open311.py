"""open311: partner systems' API keys (hashed), what their POSTs brought besides the ticket, and indexes for
the public reads by time

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open311_keys",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("can_write", sa.Boolean(), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_open311_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_keys_key_hash")),
    )
    op.create_table(
        "open311_submissions",
        sa.Column("ticket_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key_name", sa.String(length=40), nullable=False),
        sa.Column("media_url", sa.Text(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_name"], ["open311_keys.name"], name=op.f("fk_open311_submissions_key_name_open311_keys")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_number"], ["tickets.number"], name=op.f("fk_open311_submissions_ticket_number_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_number", name=op.f("pk_open311_submissions")),
    )
    op.create_index(
        op.f("ix_open311_submissions_key_name"), "open311_submissions", ["key_name"], unique=False
    )
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"], unique=False)
    op.create_index("ix_ticket_events_at", "ticket_events", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ticket_events_at", table_name="ticket_events")
    op.drop_index("ix_tickets_created_at", table_name="tickets")
    op.drop_index(op.f("ix_open311_submissions_key_name"), table_name="open311_submissions")
    op.drop_table("open311_submissions")
    op.drop_table("open311_keys")
