"""packs: small objects kept together in pack files (storage format 3)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

- ``packs``: each pack file written whole, by digest, with its size.
- ``packed_objects``: where each packed object's bytes are (pack, offset, length).
Both stay empty until the object location is upgraded to format 3.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> Any:
    from forebear.db.schema import UTCDateTime

    return UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "packs",
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_packs")),
    )
    op.create_table(
        "packed_objects",
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("pack", sa.String(32), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pack"], ["packs.digest"], name=op.f("fk_packed_objects_pack_packs")
        ),
        sa.PrimaryKeyConstraint("digest", "pack", name=op.f("pk_packed_objects")),
    )
    op.create_index(op.f("ix_packed_objects_pack"), "packed_objects", ["pack"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_packed_objects_pack"), table_name="packed_objects")
    op.drop_table("packed_objects")
    op.drop_table("packs")
