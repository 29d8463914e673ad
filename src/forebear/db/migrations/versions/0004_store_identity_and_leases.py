"""store identity, writer leases, a chunk index and run heartbeats

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

- ``store_info`` holds the store id that the object location's ``forebear.json`` holds too,
  so a catalog and a location that do not belong together are refused.
- ``leases``: a writer's hold on the objects it registered in ``pending_objects`` lasts
  until ``expires_at`` unless renewed; gc judges writers by it, never by process ids.
- ``chunk_members`` indexes the chunks of every committed chunk list (which files hold a
  chunk), filled here from ``chunk_lists``.
- ``runs.heartbeat_at``: a running run renews it; a run whose heartbeat stopped reads as
  ``crashed``.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PACKED = 20  # bytes per chunk in chunk_lists.chunks: a 16-byte digest, a 4-byte size


def _timestamp() -> Any:
    from forebear.db.schema import UTCDateTime

    return UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "store_info",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_store_info")),
    )
    op.create_table(
        "leases",
        sa.Column("writer", sa.String(32), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("writer", name=op.f("pk_leases")),
    )
    members = op.create_table(
        "chunk_members",
        sa.Column("chunk", sa.String(32), nullable=False),
        sa.Column("file", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("chunk", "file", name=op.f("pk_chunk_members")),
    )
    with op.batch_alter_table("chunk_members") as batch:
        batch.create_index(batch.f("ix_chunk_members_file"), ["file"], unique=False)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", _timestamp(), nullable=True))
    connection = op.get_bind()
    last = ""
    while True:  # a few chunk lists at a time: each can be tens of kilobytes
        page = connection.execute(
            sa.text(
                "SELECT digest, chunks FROM chunk_lists WHERE digest > :last "
                "ORDER BY digest LIMIT 200"
            ),
            {"last": last},
        ).all()
        if not page:
            break
        rows = [
            {"chunk": chunk, "file": digest}
            for digest, packed in page
            for chunk in {bytes(packed[i : i + 16]).hex() for i in range(0, len(packed), _PACKED)}
        ]
        if rows:
            connection.execute(members.insert(), rows)
        last = page[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
    op.drop_table("chunk_members")
    op.drop_table("leases")
    op.drop_table("store_info")
