"""ticket rating is 1..5 or NULL (a forged button stored rating 12)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RULE = "rating IS NULL OR rating BETWEEN 1 AND 5"


def upgrade() -> None:
    # A rating outside 1..5 can only have come from a forged button: it is no rating at all. Cleared first,
    # or the constraint could not be added to a database that was attacked before this release.
    op.execute(sa.text("UPDATE tickets SET rating = NULL WHERE rating < 1 OR rating > 5"))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_check_constraint(batch_op.f("ck_tickets_rating_range"), RULE)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_tickets_rating_range"), type_="check")
