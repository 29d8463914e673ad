"""chunked files: chunk lists, and each version's chunking, new and shared bytes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Large files are stored as content-defined chunks. ``chunk_lists`` holds, per whole-file
digest, the ordered chunks that make the file up. Each version records how files were cut
when it was logged, how many bytes it added to the object location and how many it found
stored already. Versions logged
before keep nulls there, and their files stay whole objects.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chunk_lists",
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunking", sa.JSON(), nullable=False),
        sa.Column("chunks", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_chunk_lists")),
    )
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("chunking", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("new_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("shared_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("shared_bytes")
        batch.drop_column("new_bytes")
        batch.drop_column("chunking")
    op.drop_table("chunk_lists")
