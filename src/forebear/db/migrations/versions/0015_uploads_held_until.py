"""uploads held until their commit: what a client sent a server stays off gc meanwhile

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

- ``uploads.held_until``: a client's uploads are committed later, in one request, under no
  writer's lease; until this moment (a lease period after the bytes were sent, or last
  found there), gc keeps them. The commit that names them clears it. Receipts from before
  this revision hold nothing. Indexed alone (for gc) and after the user (for the renewal
  of a user's holds at each upload).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> Any:
    from forebear.db.schema import UTCDateTime

    return UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("held_until", _timestamp(), nullable=True))
        batch.create_index(batch.f("ix_uploads_held_until"), ["held_until"], unique=False)
        batch.create_index(
            batch.f("ix_uploads_user_id_held_until"), ["user_id", "held_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_index(batch.f("ix_uploads_user_id_held_until"))
        batch.drop_index(batch.f("ix_uploads_held_until"))
        batch.drop_column("held_until")
