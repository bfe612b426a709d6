"""widget_inbox: what the outbox delivered to residents of the website chat widget

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "widget_inbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_widget_inbox")),
    )
    op.create_index(op.f("ix_widget_inbox_chat_id_id"), "widget_inbox", ["chat_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_widget_inbox_chat_id_id"), table_name="widget_inbox")
    op.drop_table("widget_inbox")
