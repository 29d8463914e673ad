"""The catalog's tables, as SQLAlchemy 2.0 typed models. Digests are plain strings here:
the database knows nothing of where objects live."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from .lite import EPOCH, stored_moment

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# A run's public id (`paths.RUN_ID_RULES`): up to 64 characters since schema 0014, 8 before.
# SQLite does not enforce a declared length, and changing one there means rebuilding the
# tables (`versions` among them), so SQLite catalogs keep declaring 8.
RUN_ID = String(8).with_variant(String(64), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps in UTC, handed back timezone-aware. PostgreSQL stores ``timestamptz``;
    SQLite stores integer microseconds since the epoch (8 bytes instead of a 26-character
    string: it matters on tables with millions of rows)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return stored_moment(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, int):
            return EPOCH + dt.timedelta(microseconds=value)
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ArtifactRow(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Next version number to hand out; bumped inside the committing transaction, so numbers
    # stay unique and gapless whatever the number of writers.
    next_number: Mapped[int] = mapped_column(Integer, default=0)


_LIVE = "deleted_at IS NULL"


class VersionRow(Base):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("artifact_id", "number"),
        # one live version per content: the same bytes logged after a deletion are a new
        # version (numbers are never reused)
        Index(
            "uq_versions_live_digest",
            "artifact_id",
            "digest",
            unique=True,
            sqlite_where=text(_LIVE),  # PostgreSQL's: see `for_postgresql`
        ),
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    number: Mapped[int] = mapped_column(Integer)
    # Digest of the canonical manifest, which is stored as an object under this digest.
    digest: Mapped[str] = mapped_column(String(32))
    hash_algorithm: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(RUN_ID, ForeignKey("runs.id"), nullable=True)
    # How large files were cut when this version was logged (null: before chunking existed).
    chunking: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # When it was logged: the bytes of its stored files this version added to the object
    # location, and those it found stored already (null: logged before this was recorded).
    new_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    shared_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # A deleted version is hidden from listings and refs until restored; gc purges it (its
    # bytes and entries) once ``deleted_at`` is older than its grace period.
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # After this moment `prune` deletes the version (its TTL), unless it has user aliases.
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A registry version links this source version: same digest and entries, no bytes
    # copied; lineage passes through the link.
    source_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("versions.id"), nullable=True, index=True
    )


def for_postgresql() -> None:
    """Give the partial index of live versions its PostgreSQL condition, once a PostgreSQL
    catalog is opened. Named in the index itself, the argument would have SQLAlchemy import
    its PostgreSQL dialect to check it (30 ms here), for every command on SQLite too."""
    for index in Base.metadata.tables[VersionRow.__tablename__].indexes:
        options = index.dialect_options["postgresql"]
        if index.name == "uq_versions_live_digest" and options["where"] is None:
            options["where"] = text(_LIVE)


class EntryRow(Base):
    __tablename__ = "entries"
    __table_args__ = (Index(None, "digest"),)

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    # code point order, as manifests are sorted (PostgreSQL's "C" collation; see 0002)
    path: Mapped[str] = mapped_column(
        Text().with_variant(Text(collation="C"), "postgresql"), primary_key=True
    )
    digest: Mapped[str | None] = mapped_column(String(32), nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)


class ChunkListRow(Base):
    """The chunks of a file stored in chunks, by the file's digest: shared by every entry
    with that digest. Inserted in the transaction that commits the first such entry."""

    __tablename__ = "chunk_lists"

    digest: Mapped[str] = mapped_column(String(32), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunking: Mapped[dict[str, Any]] = mapped_column(JSON)
    # 20 bytes a chunk, in file order: its 16-byte digest, then its size (4 bytes, big-endian)
    chunks: Mapped[bytes] = mapped_column(LargeBinary)


class AliasRow(Base):
    __tablename__ = "aliases"

    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))


class AliasHistoryRow(Base):
    __tablename__ = "alias_history"
    __table_args__ = (Index(None, "artifact_id", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    alias: Mapped[str] = mapped_column(String(128))
    # None when the alias was removed.
    version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"), nullable=True)
    previous_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("versions.id"), nullable=True
    )
    run_id: Mapped[str | None] = mapped_column(RUN_ID, ForeignKey("runs.id"), nullable=True)
    moved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who moved it and why (null for moves recorded before 0006).
    actor: Mapped[str | None] = mapped_column(String(256), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RunRow(Base):
    __tablename__ = "runs"
    # Both indexes list runs in the order of `list_runs` (start, then id), page by page:
    # those of one project, and those of every project.
    __table_args__ = (Index(None, "project_id", "started_at"), Index(None, "started_at", "id"))

    # A small integer key keeps the edges table and its indexes compact; ``id`` is the
    # public run id.
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(RUN_ID, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # renewed while the run is running; a running run whose heartbeat stopped has crashed
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # a deleted run stays in lineage as a node marked deleted
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_by: Mapped[str | None] = mapped_column(String(256), nullable=True)


class EdgeRow(Base):
    """``direction='out'``: the run logged the version; ``'in'``: the run used it."""

    __tablename__ = "edges"
    # Both directions have a covering index: the primary key (run -> versions) and the
    # index below (version -> runs). Without a rowid the table is its own primary index.
    __table_args__ = (
        Index(None, "version_id", "direction", "run_pk"),
        {"sqlite_with_rowid": False},
    )

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk"), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)


class ChunkMemberRow(Base):
    """Which files (by whole-file digest) a chunk belongs to: the chunk lists of
    `ChunkListRow`, indexed by chunk. Inserted with their chunk list."""

    __tablename__ = "chunk_members"
    __table_args__ = (Index(None, "file"),)

    chunk: Mapped[str] = mapped_column(String(32), primary_key=True)
    file: Mapped[str] = mapped_column(String(32), primary_key=True)


class StoreInfoRow(Base):
    """Facts about the store as a whole; ``store_id`` is also in the object location's
    format file, so a catalog and a location that do not belong together are refused."""

    __tablename__ = "store_info"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LeaseRow(Base):
    """A writer's hold on the objects it registered in `PendingObjectRow`: gc keeps them
    while ``expires_at`` (renewed by the writer) has not passed, and a writer whose lease
    was taken away may not commit."""

    __tablename__ = "leases"

    writer: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    host: Mapped[str] = mapped_column(String(256))  # for people reading the table
    pid: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingObjectRow(Base):
    """Objects a writer is storing but has not committed yet, one row each, as writers
    before catalog revision 0011 registered them (gc still honours them: such a writer may
    be running while a newer one migrates the catalog); see `PendingBatchRow`."""

    __tablename__ = "pending_objects"
    __table_args__ = (Index(None, "writer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    writer: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingBatchRow(Base):
    """Objects a writer is storing but has not committed yet; gc must not collect them.
    One row per registration, its digests joined by newlines: a log registers every object
    it stores or relies on, and a row per object cost 5 us each (a quarter of a second of a
    log of 50,000 files, most of it spent on values no one reads again)."""

    __tablename__ = "pending_batches"
    __table_args__ = (Index(None, "writer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    writer: Mapped[str] = mapped_column(String(32))
    digests: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagRow(Base):
    """Free labels on versions (names follow the alias rules; many versions share one)."""

    __tablename__ = "tags"
    __table_args__ = (Index(None, "name"),)

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)


class RetentionRow(Base):
    """An artifact's retention policy, applied by `prune`."""

    __tablename__ = "retention"

    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)
    keep_last: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_age_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    keep_aliased: Mapped[bool] = mapped_column(Boolean, default=True)


class PurgeRow(Base):
    """Bytes removed from the store on purpose, and why."""

    __tablename__ = "purges"
    __table_args__ = (Index(None, "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(256))
    purged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RedactionRow(Base):
    """An entry whose bytes a purge removed: it stays listed, and reading it says why."""

    __tablename__ = "redactions"

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    path: Mapped[str] = mapped_column(
        Text().with_variant(Text(collation="C"), "postgresql"), primary_key=True
    )
    purge_id: Mapped[int] = mapped_column(ForeignKey("purges.id"))


class AuditRow(Base):
    """One change to the catalog: who, when, what, on which target; appended, never
    changed."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "artifact_id", "id"),
        Index(None, "version_id"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(600))
    artifact_id: Mapped[int | None] = mapped_column(ForeignKey("artifacts.id"), nullable=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"), nullable=True)
    run_id: Mapped[str | None] = mapped_column(RUN_ID, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ProtectedAliasRow(Base):
    """An alias of one artifact that moves only when forced (a maintainer's, on a server)."""

    __tablename__ = "protected_aliases"

    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    protected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    protected_by: Mapped[str] = mapped_column(String(256))


class WebhookRow(Base):
    """A receiver of signed event POSTs. Removing one keeps its delivery log."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    # HMAC key for the signature; never shown, logged or audited.
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(256))
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeliveryRow(Base):
    """One event for one webhook (the outbox): written in the transaction of the change it
    reports, sent until a receiver answers 2xx, never sent again after that."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index(None, "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"))
    event: Mapped[str] = mapped_column(String(64))
    # The exact JSON body sent (and signed) on every attempt.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A sender's claim, so two processes do not send one delivery at once.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MetricRow(Base):
    """One value of a run's history: a key at a step (``run.log(values, step=i)``)."""

    __tablename__ = "metrics"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk"), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the value exactly, when it was logged as a whole number (an epoch, a sample count):
    # read back as an int, where ``value`` (a float, for charts) could round it
    whole: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class DistributedRow(Base):
    """A version that several processes build (``run.upsert_artifact(...,
    distributed_id=...)``): invisible until ``finish_artifact`` commits it. Its parts'
    objects are held by the lease named ``writer`` (renewed by every upsert)."""

    __tablename__ = "distributed"
    __table_args__ = (UniqueConstraint("project", "name", "distributed_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    distributed_id: Mapped[str] = mapped_column(String(256))
    writer: Mapped[str] = mapped_column(String(32))
    revision: Mapped[int] = mapped_column(Integer, default=0)  # parts changed this often
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"), nullable=True)


class DistributedPartRow(Base):
    """One entry a process contributed to a distributed version, and which run did."""

    __tablename__ = "distributed_parts"

    distributed: Mapped[int] = mapped_column(ForeignKey("distributed.id"), primary_key=True)
    path: Mapped[str] = mapped_column(
        Text().with_variant(Text(collation="C"), "postgresql"), primary_key=True
    )
    digest: Mapped[str | None] = mapped_column(String(32), nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[str] = mapped_column(RUN_ID)


class UserRow(Base):
    """Someone a forebear server lets in: named, maybe a server admin, maybe disabled
    (then none of their tokens works)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TokenRow(Base):
    """A user's API token, kept only as its SHA-256 (tokens are random, so a plain hash
    is enough and lets a request be checked with one indexed lookup)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(128))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GrantRow(Base):
    """A user's role in a project (which need not exist yet)."""

    __tablename__ = "grants"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))


class UploadRow(Base):
    """Bytes a user sent to a server and the server checked: proof that the user holds
    them, so a version of theirs may name them even when others stored them first, and a
    hold on them until the commit that names them."""

    __tablename__ = "uploads"
    # a user's holds, renewed by each upload of theirs, without visiting their receipts
    # that hold nothing any more (the primary key would: most of them, for a busy user)
    __table_args__ = (Index(None, "user_id", "held_until"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # gc keeps the bytes until then: they are committed later, under no writer's lease
    # (`access.held_by_uploads`); the commit naming them clears it
    held_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class PackRow(Base):
    """A pack file written whole (format 3): its digest names it in the object location."""

    __tablename__ = "packs"

    digest: Mapped[str] = mapped_column(String(32), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PackedObjectRow(Base):
    """Where a packed object's bytes are; an object two writers packed at once is in two
    packs, and either serves."""

    __tablename__ = "packed_objects"

    digest: Mapped[str] = mapped_column(String(32), primary_key=True)
    pack: Mapped[str] = mapped_column(ForeignKey("packs.digest"), primary_key=True, index=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
