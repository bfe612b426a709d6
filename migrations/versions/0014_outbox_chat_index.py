"""outbox: each status's rows by chat, so that a claim steps from one chat with pending rows to the next

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 13:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_outbox_channel_status_chat_id_id"),
        "outbox",
        ["channel", "status", "chat_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_channel_status_chat_id_id"), table_name="outbox")
