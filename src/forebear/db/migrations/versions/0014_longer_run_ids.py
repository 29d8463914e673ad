"""longer run ids: a run id a script chooses may be up to 64 characters, as W&B's

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

- ``runs.id`` and the columns naming a run by it (``versions.created_by``,
  ``alias_history.run_id``, ``audit_events.run_id``, ``distributed_parts.run_id``) hold up
  to 64 characters on PostgreSQL, where they held 8 (widening a ``varchar`` rewrites no
  row). SQLite enforces no declared length: its catalogs are unchanged.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("runs", "id", False),
    ("versions", "created_by", True),
    ("alias_history", "run_id", True),
    ("audit_events", "run_id", True),
    ("distributed_parts", "run_id", False),
)


def _resize(old: int, new: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            existing_type=sa.String(old),
            type_=sa.String(new),
            existing_nullable=nullable,
        )


def upgrade() -> None:
    _resize(8, 64)


def downgrade() -> None:
    _resize(64, 8)  # refused by PostgreSQL while a run id is longer than 8
