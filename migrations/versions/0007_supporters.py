"""supporters: the table of residents who joined a ticket ("me too") takes the project's one word for them

The rows move to a new table rather than being renamed in place, so that its constraints and index get
names matching the new table on SQLite too (SQLite cannot rename a constraint).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "ticket_number, channel, chat_id, user_id, language, created_at"


def _create(name: str) -> None:
    op.create_table(
        name,
        sa.Column("ticket_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_number"], ["tickets.number"], name=op.f(f"fk_{name}_ticket_number_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_number", "channel", "chat_id", name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_channel_chat_id"), name, ["channel", "chat_id"], unique=False)


def _move(old: str, new: str) -> None:
    _create(new)
    op.execute(f"INSERT INTO {new} ({COLUMNS}) SELECT {COLUMNS} FROM {old}")
    op.drop_index(op.f(f"ix_{old}_channel_chat_id"), table_name=old)
    op.drop_table(old)


def upgrade() -> None:
    _move("subscriptions", "supporters")


def downgrade() -> None:
    _move("supporters", "subscriptions")
