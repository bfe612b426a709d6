"""web sign-in: one-time links from the bot and the sessions they open; indexes for the map and periods

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create(name: str, last: str) -> None:
    op.create_table(
        name,
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(last, sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f(f"fk_{name}_staff_id_staff")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_staff_id"), name, ["staff_id"], unique=False)


def upgrade() -> None:
    _create("web_links", "used_at")
    _create("web_sessions", "ended_at")
    op.create_index(op.f("ix_tickets_lat_lon"), "tickets", ["lat", "lon"], unique=False)
    # ix_tickets_created_at, which the web's period filters use too, came with 0009 (Open311).


def downgrade() -> None:
    op.drop_index(op.f("ix_tickets_lat_lon"), table_name="tickets")
    for name in ("web_sessions", "web_links"):
        op.drop_index(op.f(f"ix_{name}_staff_id"), table_name=name)
        op.drop_table(name)
