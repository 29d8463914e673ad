"""runs listed by start: an index in the order runs are listed, a page at a time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

- ``ix_runs_started_at_id`` on ``runs (started_at, id)``: a page of every project's runs
  is read from the index, not by sorting the whole table for each page.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_runs_started_at_id"), "runs", ["started_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_started_at_id"), table_name="runs")
