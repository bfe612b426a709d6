"""tickets: the nearby search's index leads with the status, so that it reads the open tickets of a bounding
box and never the closed ones a spot gathers

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 15:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_tickets_category_code_status_lat_lon"),
        "tickets",
        ["category_code", "status", "lat", "lon"],
        unique=False,
    )
    op.drop_index(op.f("ix_tickets_category_code_lat_lon"), table_name="tickets")


def downgrade() -> None:
    op.create_index(
        op.f("ix_tickets_category_code_lat_lon"), "tickets", ["category_code", "lat", "lon"], unique=False
    )
    op.drop_index(op.f("ix_tickets_category_code_status_lat_lon"), table_name="tickets")
