"""whole metrics: a whole number logged to a run's history is read back as one

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

- ``metrics.whole``: the value exactly, when it was logged as a whole number (an epoch, a
  count); ``value`` keeps it as a float for charts. Rows logged before stay floats.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("metrics", sa.Column("whole", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("whole")
