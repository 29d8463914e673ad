"""registry: links, alias reasons and protection, webhooks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

- ``versions.source_version_id``: a registry version links a source version (same digest
  and entries; no bytes copied).
- ``alias_history``: ``actor`` and ``reason`` of every move from now on.
- ``protected_aliases``: aliases that move only when forced.
- ``webhooks`` and ``webhook_deliveries`` (the outbox of events to send).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> Any:
    from forebear.db.schema import UTCDateTime

    return UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("source_version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_versions_source_version_id_versions"),
            "versions",
            ["source_version_id"],
            ["id"],
        )
        batch.create_index(
            batch.f("ix_versions_source_version_id"), ["source_version_id"], unique=False
        )
    with op.batch_alter_table("alias_history") as batch:
        batch.add_column(sa.Column("actor", sa.String(256), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
    op.create_table(
        "protected_aliases",
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("protected_at", _timestamp(), nullable=False),
        sa.Column("protected_by", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_protected_aliases_artifact_id_artifacts"),
        ),
        sa.PrimaryKeyConstraint("artifact_id", "alias", name=op.f("pk_protected_aliases")),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("removed_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _timestamp(), nullable=False),
        sa.Column("claimed_until", _timestamp(), nullable=True),
        sa.Column("last_attempt_at", _timestamp(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_delivered_at_next_attempt_at"),
        "webhook_deliveries",
        ["delivered_at", "next_attempt_at"],
        unique=False,
    )
    if op.get_bind().dialect.name == "sqlite":  # versions was rebuilt: nothing may dangle
        broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise RuntimeError(f"the catalog has a dangling reference: {tuple(broken)}")


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("protected_aliases")
    with op.batch_alter_table("alias_history") as batch:
        batch.drop_column("reason")
        batch.drop_column("actor")
    with op.batch_alter_table("versions") as batch:
        batch.drop_index(batch.f("ix_versions_source_version_id"))
        batch.drop_constraint(batch.f("fk_versions_source_version_id_versions"), type_="foreignkey")
        batch.drop_column("source_version_id")
