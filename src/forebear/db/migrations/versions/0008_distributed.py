"""distributed versions: several processes build one version

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

- ``distributed``: a version in the making under a distributed id (invisible until
  finished), and the lease that holds its parts' objects.
- ``distributed_parts``: the entries each process contributed.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> Any:
    from forebear.db.schema import UTCDateTime

    return UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "distributed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("distributed_id", sa.String(256), nullable=False),
        sa.Column("writer", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_distributed_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributed")),
        sa.UniqueConstraint(
            "project",
            "name",
            "distributed_id",
            name=op.f("uq_distributed_project_name_distributed_id"),
        ),
    )
    op.create_table(
        "distributed_parts",
        sa.Column("distributed", sa.Integer(), nullable=False),
        sa.Column(
            "path",
            sa.Text().with_variant(sa.Text(collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(32), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(
            ["distributed"],
            ["distributed.id"],
            name=op.f("fk_distributed_parts_distributed_distributed"),
        ),
        sa.PrimaryKeyConstraint("distributed", "path", name=op.f("pk_distributed_parts")),
    )


def downgrade() -> None:
    op.drop_table("distributed_parts")
    op.drop_table("distributed")
