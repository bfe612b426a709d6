"""processed_events keyed by bot too

Telegram update_ids and VK event ids are unique per bot or community only: after the operator switches bots on
the same database, a new bot's update 1 must not be taken for the old bot's. Rows already recorded keep an
empty bot id; they are pruned with the rest after PROCESSED_EVENTS_DAYS.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite cannot change a primary key in place: batch mode copies the table (PostgreSQL alters it).
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bot", sa.String(length=32), nullable=False, server_default=""))
        batch_op.drop_constraint("pk_processed_events", type_="primary")
        batch_op.create_primary_key("pk_processed_events", ["channel", "bot", "event_key"])
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.alter_column("bot", existing_type=sa.String(length=32), server_default=None)


def downgrade() -> None:
    # Two bots' rows may share (channel, event_key): they are dedupe records only, so they are dropped.
    op.execute(sa.text("DELETE FROM processed_events"))
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.drop_constraint("pk_processed_events", type_="primary")
        batch_op.create_primary_key("pk_processed_events", ["channel", "event_key"])
        batch_op.drop_column("bot")
