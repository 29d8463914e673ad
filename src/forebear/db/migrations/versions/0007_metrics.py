"""metrics: a run's history of values by step

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

- ``metrics``: (run, key, step) -> value, written by ``run.log(values, step=i)``.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> Any:
    from forebear.db.schema import UTCDateTime

    return UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.pk"], name=op.f("fk_metrics_run_pk_runs")),
        sa.PrimaryKeyConstraint("run_pk", "key", "step", name=op.f("pk_metrics")),
    )


def downgrade() -> None:
    op.drop_table("metrics")
