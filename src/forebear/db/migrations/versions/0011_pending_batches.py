"""pending batches: a writer's registrations as one row each, not one row per object

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

- ``pending_batches``: the digests of one registration, joined by newlines, under the
  writer's lease. ``pending_objects`` stays: a writer that opened the catalog before this
  revision registers there until it ends, and gc keeps honouring it.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> Any:
    from forebear.db.schema import UTCDateTime

    return UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "pending_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("writer", sa.String(32), nullable=False),
        sa.Column("digests", sa.Text(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_batches")),
    )
    op.create_index(op.f("ix_pending_batches_writer"), "pending_batches", ["writer"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_batches_writer"), table_name="pending_batches")
    op.drop_table("pending_batches")
