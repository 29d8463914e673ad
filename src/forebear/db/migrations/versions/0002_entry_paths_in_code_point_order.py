"""entry paths in code point order on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Manifests are sorted by code point. A PostgreSQL database with a linguistic collation
(``en_US.UTF-8``) would order entry paths differently (``B`` after ``a``, ``_`` ignored),
so pages of entries read back in path order would not match the manifest's order. The
"C" collation compares UTF-8 bytes, which is code point order; SQLite already does.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("entries", "path", type_=sa.Text(collation="C"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("entries", "path", type_=sa.Text())
