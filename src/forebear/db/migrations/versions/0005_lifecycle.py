"""lifecycle: deletion, TTL, tags, retention, purges and the audit trail

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

- ``versions``: ``deleted_at``/``deleted_by`` (soft deletion), ``purged_at`` (gc removed a
  deleted version's bytes: it can no longer be restored) and ``expires_at`` (its TTL). One
  *live* version per content: the unique constraint on (artifact, digest) becomes a unique
  index over versions that are not deleted, so the same bytes logged after a deletion make
  a new version.
- ``runs``: ``deleted_at``/``deleted_by``.
- ``tags``, ``retention`` (per artifact), ``purges`` and ``redactions`` (entries whose bytes
  were purged), ``audit_events`` (every change from now on).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("deleted_at IS NULL")


def _timestamp() -> Any:
    from forebear.db.schema import UTCDateTime

    return UTCDateTime()


def _path() -> Any:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("deleted_at", _timestamp(), nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.String(256), nullable=True))
        batch.add_column(sa.Column("purged_at", _timestamp(), nullable=True))
        batch.add_column(sa.Column("expires_at", _timestamp(), nullable=True))
        batch.drop_constraint("uq_versions_artifact_id_digest", type_="unique")
        batch.create_index(batch.f("ix_versions_expires_at"), ["expires_at"], unique=False)
    op.create_index(
        "uq_versions_live_digest",
        "versions",
        ["artifact_id", "digest"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deleted_at", _timestamp(), nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.String(256), nullable=True))
    op.create_table(
        "tags",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_tags_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("version_id", "name", name=op.f("pk_tags")),
    )
    op.create_index(op.f("ix_tags_name"), "tags", ["name"], unique=False)
    op.create_table(
        "retention",
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("max_age_seconds", sa.Float(), nullable=True),
        sa.Column("keep_aliased", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"], ["artifacts.id"], name=op.f("fk_retention_artifact_id_artifacts")
        ),
        sa.PrimaryKeyConstraint("artifact_id", name=op.f("pk_retention")),
    )
    op.create_table(
        "purges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("purged_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purges")),
    )
    op.create_index(op.f("ix_purges_digest"), "purges", ["digest"], unique=False)
    op.create_table(
        "redactions",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", _path(), nullable=False),
        sa.Column("purge_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["purge_id"], ["purges.id"], name=op.f("fk_redactions_purge_id_purges")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_redactions_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("version_id", "path", name=op.f("pk_redactions")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(600), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(8), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"], ["artifacts.id"], name=op.f("fk_audit_events_artifact_id_artifacts")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_audit_events_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        op.f("ix_audit_events_artifact_id_id"), "audit_events", ["artifact_id", "id"], unique=False
    )
    op.create_index(op.f("ix_audit_events_version_id"), "audit_events", ["version_id"])
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    if op.get_bind().dialect.name == "sqlite":  # versions was rebuilt: nothing may dangle
        broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise RuntimeError(f"the catalog has a dangling reference: {tuple(broken)}")


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("redactions")
    op.drop_table("purges")
    op.drop_table("retention")
    op.drop_table("tags")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deleted_by")
        batch.drop_column("deleted_at")
    op.drop_index("uq_versions_live_digest", table_name="versions")
    with op.batch_alter_table("versions") as batch:
        batch.drop_index(batch.f("ix_versions_expires_at"))
        batch.create_unique_constraint("uq_versions_artifact_id_digest", ["artifact_id", "digest"])
        batch.drop_column("expires_at")
        batch.drop_column("purged_at")
        batch.drop_column("deleted_by")
        batch.drop_column("deleted_at")
