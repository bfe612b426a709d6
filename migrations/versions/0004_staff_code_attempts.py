"""wrong /staff CODE tries (at most 5 per chat per hour); outbox back-off flag (cut when the channel is back)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_code_attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_code_attempts")),
    )
    with op.batch_alter_table("staff_code_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_code_attempts_channel_chat_id_at"),
            ["channel", "chat_id", "at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_staff_code_attempts_at"), ["at"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backoff_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("backoff_since")

    with op.batch_alter_table("staff_code_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_code_attempts_at"))
        batch_op.drop_index(batch_op.f("ix_staff_code_attempts_channel_chat_id_at"))

    op.drop_table("staff_code_attempts")
