"""Distributed versions in a local backend: each process stores its files and adds them as
parts (`upsert`), and one process commits the version from every part (`finish`).

Each part's objects are registered under the distributed version's own lease before they
are written, so gc keeps them until the finish commits the version (or, if nothing is
added for the hold period, until the lease expires). The finish writes the manifest of
every part, then commits in one transaction, provided no part was added meanwhile.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO, cast

from .. import ingest, progress
from .. import settings as config
from ..db import chunks as db_chunks
from ..db import distributed as db_distributed
from ..db import runs as db_runs
from ..db import traversal, writers
from ..db import versions as db_versions
from ..db.engine import Session, read_session, write_session
from ..errors import InvalidInput, StoreError
from ..manifest import ManifestWriter
from ..paths import check_alias, check_name
from ..records import VersionData
from .commit import catalog_of, check_catalog, record_logged

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from .backend import LocalBackend

ATTEMPTS = 5  # finishing starts over when a part arrives meanwhile


def upsert(
    backend: LocalBackend,
    artifact: Artifact,
    *,
    project: str,
    run_id: str,
    distributed_id: str,
    show_progress: bool | None = None,
) -> None:
    """Store this process's files and add them to the distributed version."""
    check_name(project, "project")
    backend.require_writable()
    if not len(artifact):
        raise InvalidInput(f"artifact {artifact.name!r} is empty: add its files first")
    show = progress.wanted(show_progress)
    hold = config.distributed_hold()
    with write_session(backend.engine) as session:
        check_catalog(backend, session)
        row = db_distributed.open_draft(
            session, project, artifact.name, artifact.type, distributed_id,
            uuid.uuid4().hex, hold,
        )  # fmt: skip
        writer = row.writer

    def register(digests: list[str]) -> None:
        with write_session(backend.engine) as session:
            _check_held(session, writer, project, artifact.name, distributed_id)
            writers.register(session, writer, digests)

    with ingest.prepare(artifact, backend.stat_cache, show, backend.own_files()) as prepared:
        ingest.store_objects(
            prepared, backend.objects, register, catalog_of(backend),
            backend.chunking, artifact.name, show,
        )  # fmt: skip
        backend.objects.flush()
        with write_session(backend.engine) as session:
            check_catalog(backend, session)
            row = db_distributed.open_draft(
                session, project, artifact.name, artifact.type, distributed_id, writer, hold
            )
            _check_held(session, row.writer, project, artifact.name, distributed_id)
            db_distributed.add_parts(session, row, list(prepared.entries()), run_id)
            db_chunks.add_chunk_lists(session, prepared.chunk_lists(backend.chunking))


def finish(
    backend: LocalBackend,
    artifact: Artifact,
    *,
    project: str,
    run_id: str,
    distributed_id: str,
    aliases: Sequence[str],
    show_progress: bool | None = None,
) -> VersionData:
    """Commit the distributed version from every part (and ``artifact``'s own files)."""
    aliases = [check_alias(a) for a in aliases]
    if len(artifact):
        upsert(backend, artifact, project=project, run_id=run_id,
               distributed_id=distributed_id, show_progress=show_progress)  # fmt: skip
    label = f"{project}/{artifact.name} (distributed id {distributed_id!r})"
    for _attempt in range(ATTEMPTS):
        with read_session(backend.engine) as session:
            row = db_distributed.find(session, project, artifact.name, distributed_id)
            if row is None:
                raise InvalidInput(
                    f"no parts of {label} yet: add them with run.upsert_artifact(..., "
                    "distributed_id=...) first"
                )
            if row.finished_at is not None:
                raise InvalidInput(f"{label} was finished already")
            revision, writer, type_ = row.revision, row.writer, row.type
            spool = cast(BinaryIO, tempfile.SpooledTemporaryFile(8 << 20))  # noqa: SIM115
            manifest = ManifestWriter(spool)
            for page in db_distributed.parts(session, row.id):
                for entry in page:
                    manifest.add(entry)
            digest = manifest.finish()
        with spool:
            with write_session(backend.engine) as session:
                _check_held(session, writer, project, artifact.name, distributed_id)
                writers.register(session, writer, [digest])
            spool.seek(0)
            if digest not in backend.objects.present({digest: spool.seek(0, os.SEEK_END)}):
                spool.seek(0)
                backend.objects.put_stream(spool, digest, source="the manifest")
            backend.objects.flush()
        with write_session(backend.engine) as session:
            check_catalog(backend, session)
            row = db_distributed.find(session, project, artifact.name, distributed_id)
            if row is None or row.revision != revision:
                continue  # a part arrived meanwhile: build the manifest again
            _check_held(session, writer, project, artifact.name, distributed_id)
            contents = db_versions.Contents(
                manifest.size,
                manifest.count,
                (e.values() for page in db_distributed.parts(session, row.id) for e in page),
                (),
                backend.chunking,
            )
            version, created = db_versions.commit_version(
                session, project=project, name=artifact.name, type_=type_, contents=contents,
                digest=digest, description=artifact.description, metadata=artifact.metadata,
                run_id=run_id, aliases=aliases, actor=backend.actor,
            )  # fmt: skip
            for contributor in db_distributed.contributors(session, row.id):
                pk = db_runs.run_pk(session, contributor)
                if not traversal.run_descends_from(session, pk, version.id):
                    db_runs.add_edge(session, pk, version.id, "out")
            record_logged(
                session, backend.actor, version, created, run_id, aliases, (), manifest.count
            )
            db_distributed.finish(session, row, version.id)
            data = db_versions.load_versions(session, [version.id])[version.id]
        backend.catalog_file.check()
        return data
    raise StoreError(f"{label}: parts kept arriving while it was finished; finish it again")


def _check_held(
    session: Session, writer: str, project: str, name: str, distributed_id: str
) -> None:
    if not writers.holds(session, writer):
        raise StoreError(
            f"{project}/{name} (distributed id {distributed_id!r}) was abandoned (nothing was "
            "added for longer than its hold) and gc may have removed its parts; start again "
            "with a new distributed id"
        )
