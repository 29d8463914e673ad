"""`Store`: one catalog database plus one object location, and `open`.

Commit protocol (write bottom-up): objects first, then the manifest object, then one
database transaction that inserts the version, its entries, the run edge and the alias
moves. A crash at any point leaves at most unreachable objects, never a partial version.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import text
from sqlalchemy.orm import Session

from . import config, ingest, progress
from .artifacts import Artifact, ArtifactVersion
from .cache import ObjectCache
from .chunking import (
    DEFAULT_CHUNKING,
    MIN_THRESHOLD,
    ChunkedReader,
    Chunking,
    ChunkList,
    in_order,
)
from .db import catalog, traversal
from .db.catalog import VersionData
from .db.engine import ensure_schema, make_engine, read_session, redact, write_session
from .db.schema import RunRow, VersionRow
from .errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    Problem,
)
from .hashing import BLOCK_SIZE, hash_bytes, new_hasher
from .manifest import PAGE_ENTRIES, Manifest, ManifestEntry, pages
from .objects import TRANSFER_WORKERS, ObjectLocation, VerifyingReader
from .paths import check_alias, check_name, parse_ref
from .references import check_reference, open_reference
from .statcache import StatCache

if TYPE_CHECKING:
    from .lineage import Lineage
    from .run import Run
    from .sync import TransferReport

# A writer on another host whose pending objects are older than this is presumed dead.
PENDING_EXPIRY_HOURS = 24.0
# Objects verify remembers having checked (an object shared by many entries is read once).
CHECKED_DIGESTS = 100_000
# Temporary files of local writers older than this are leftovers of crashes.
TMP_EXPIRY_SECONDS = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Where artifacts live: a SQL catalog (``db_url``) and an object location
    (``objects_url``), created on first use. See `forebear.open` for the short form."""

    def __init__(
        self,
        db_url: str | None = None,
        objects_url: str | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        cache_max_bytes: int | None = None,
        chunking: Chunking | None = None,
    ) -> None:
        settings = config.resolve(db_url, objects_url, cache_dir)
        self.db_url = settings.db_url
        self.objects_url = settings.objects_url
        self.cache_dir = settings.cache_dir
        self.cache = ObjectCache(
            self.cache_dir / "objects",
            cache_max_bytes if cache_max_bytes is not None else settings.cache_max_bytes,
        )
        self.stat_cache = StatCache(self.cache_dir / "stat-cache.db")
        self.objects = ObjectLocation(settings.objects_url, storage_options)
        self.objects.ensure_format()
        # how files logged from now on are cut (each version records the settings it used)
        self.chunking = chunking or DEFAULT_CHUNKING
        self.engine = make_engine(settings.db_url)
        ensure_schema(self.engine)

    def __repr__(self) -> str:
        return f"Store(db_url={redact(self.db_url)!r}, objects_url={self.objects_url!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------

    def _default_project(self) -> str | None:
        from .run import active_run

        run = active_run()
        return run.project if run is not None else None

    def _version(self, session: Session, row: VersionRow) -> ArtifactVersion:
        return self._versions(session, [row.id])[row.id]

    def _versions(
        self, session: Session, version_ids: Iterable[int], type_: str | None = None
    ) -> dict[int, ArtifactVersion]:
        loaded = catalog.load_versions(session, version_ids, type_)
        return {i: ArtifactVersion(self, data) for i, data in loaded.items()}

    def artifact(self, ref: str | ArtifactVersion, project: str | None = None) -> ArtifactVersion:
        """The version a ref names: ``name`` (latest), ``name:v3``, ``name:alias``,
        ``project/name:...``."""
        if isinstance(ref, ArtifactVersion):
            return ref
        parsed = parse_ref(ref)
        with read_session(self.engine) as session:
            row = catalog.get_version(session, parsed, project or self._default_project())
            return self._version(session, row)

    def artifacts(
        self, project: str | None = None, type: str | None = None
    ) -> list[ArtifactVersion]:
        """The latest version of every artifact, optionally of one project or type."""
        with read_session(self.engine) as session:
            ids = catalog.latest_version_ids(session, project, type)
            found = self._versions(session, ids)
        return sorted(found.values(), key=lambda v: (v.project, v.name))

    def versions(self, name: str, project: str | None = None) -> list[ArtifactVersion]:
        """Every version of one artifact, oldest first."""
        parsed = parse_ref(name if project is None else f"{project}/{name}")
        with read_session(self.engine) as session:
            artifact = catalog.get_artifact(session, parsed, self._default_project())
            return [self._version(session, r) for r in catalog.list_versions(session, artifact.id)]

    def alias_history(self, name: str, project: str | None = None) -> list[dict[str, Any]]:
        """Every alias move of an artifact, oldest first."""
        parsed = parse_ref(name if project is None else f"{project}/{name}")
        with read_session(self.engine) as session:
            artifact = catalog.get_artifact(session, parsed, self._default_project())
            return catalog.alias_history(session, artifact.id)

    def run(self, run_id: str) -> Run:
        with read_session(self.engine) as session:
            row = catalog.get_run(session, run_id)
            return self._run(session, row)

    def runs(self, project: str | None = None) -> list[Run]:
        with read_session(self.engine) as session:
            return [self._run(session, r, name) for r, name in catalog.list_runs(session, project)]

    def _run(self, session: Session, row: RunRow, project: str | None = None) -> Run:
        from .run import Run

        status = row.status
        context = row.context or {}
        if (
            status == "running"
            and context.get("host") == socket.gethostname()
            and isinstance(context.get("pid"), int)
            and context["pid"] != os.getpid()
            and not _pid_alive(context["pid"])
        ):
            status = "crashed"
            with write_session(self.engine) as writer:
                catalog.update_run(writer, row.id, status=status)
        name = project if project is not None else catalog.project_name(session, row.project_id)
        return Run._from_row(self, row, name, status)

    def lineage(
        self,
        ref_or_version: str | ArtifactVersion,
        upstream: bool = True,
        downstream: bool = False,
        depth: int | None = None,
        *,
        type: str | None = None,
    ) -> Lineage:
        """The graph of runs and versions around one version, ``depth`` artifact hops out
        (None: all the way), optionally showing only versions of one ``type``."""
        from .lineage import build_lineage

        version = self.artifact(ref_or_version)
        with read_session(self.engine) as session:
            return build_lineage(self, session, version, upstream, downstream, depth, type)

    # -- internals used by ArtifactVersion and Run -----------------------------------

    def _manifest_of(self, data: VersionData) -> Manifest:
        with read_session(self.engine) as session:
            return Manifest(tuple(catalog.list_entries(session, data.id)))

    def _entries(self, data: VersionData, start: int, limit: int | None) -> list[ManifestEntry]:
        with read_session(self.engine) as session:
            return catalog.list_entries(session, data.id, start, limit)

    def _entry_pages(self, data: VersionData) -> Iterator[list[ManifestEntry]]:
        """Pages of entries, each read in its own short transaction (keyset pagination
        needs no snapshot across pages: a committed version never changes)."""
        last: str | None = None
        while True:
            with read_session(self.engine) as session:
                page = catalog.entries_after(session, data.id, last)
            if not page:
                return
            yield page
            last = page[-1].path

    def _chunk_lists(self, entries: Iterable[ManifestEntry]) -> dict[str, ChunkList]:
        """The chunk lists of the stored entries among ``entries`` that are chunked."""
        digests = [
            e.digest
            for e in entries
            if e.uri is None and e.digest is not None and e.size >= MIN_THRESHOLD
        ]
        if not digests:
            return {}
        with read_session(self.engine) as session:
            return catalog.chunk_lists_for(session, digests)

    def _aliases_of(self, version: ArtifactVersion) -> list[str]:
        with read_session(self.engine) as session:
            return catalog.aliases_of(session, version.id)

    def _set_alias(self, version: ArtifactVersion, alias: str, run_id: str | None = None) -> None:
        check_alias(alias)
        with write_session(self.engine) as session:
            catalog.set_alias(session, version._data.artifact_id, alias, version.id, run_id)

    def _remove_alias(self, version: ArtifactVersion, alias: str) -> None:
        check_alias(alias)
        if alias == catalog.LATEST:
            raise InvalidInput("'latest' is maintained automatically and cannot be removed")
        with write_session(self.engine) as session:
            if not catalog.remove_alias(session, version._data.artifact_id, alias, version.id):
                raise NotFound(f"{version.ref} has no alias {alias!r} (it has {version.aliases})")

    def _runs_of(self, version: ArtifactVersion, direction: str) -> list[Run]:
        with read_session(self.engine) as session:
            rows = catalog.runs_of_version(session, version.id, direction)
            return [self._run(session, r) for r in rows]

    def _run_versions(self, run_id: str, direction: str) -> list[ArtifactVersion]:
        with read_session(self.engine) as session:
            rows = catalog.versions_of_run(session, run_id, direction)
            return [self._version(session, r) for r in rows]

    def _reachable(
        self, version: ArtifactVersion, *, upstream: bool, type_: str | None, depth: int | None
    ) -> list[ArtifactVersion]:
        with read_session(self.engine) as session:
            distances = traversal.walk(session, version.id, upstream, depth).distances
            del distances[version.id]
            found = self._versions(session, distances, type_)
        return sorted(
            found.values(),
            key=lambda v: (distances[v.id], v.project, v.name, v._data.number),
        )

    # -- writing ---------------------------------------------------------------------

    def _log(
        self,
        artifact: Artifact,
        *,
        project: str,
        run_id: str | None,
        aliases: Sequence[str] = (),
        show_progress: bool | None = None,
    ) -> ArtifactVersion:
        """Hash and store an artifact's files, then commit the version in one transaction."""
        check_name(project, "project")
        aliases = [check_alias(a) for a in aliases]
        if not len(artifact):
            raise InvalidInput(
                f"artifact {artifact.name!r} is empty; add files with add_file/add_dir first"
            )
        show = progress.wanted(show_progress)
        writer = uuid.uuid4().hex

        def register(digests: list[str]) -> None:
            with write_session(self.engine) as session:
                catalog.register_pending(
                    session, writer, digests, socket.gethostname(), os.getpid()
                )

        def known_chunked(digests: list[str]) -> dict[str, ChunkList]:
            with read_session(self.engine) as session:
                return catalog.chunk_lists_for(session, digests)

        with ingest.prepare(artifact, self.stat_cache, show) as prepared:
            with read_session(self.engine) as session:
                # Unchanged content: its version was committed, so every object it needs
                # is stored and durable already; nothing to register, read, send or sync.
                known = catalog.has_version(session, project, artifact.name, prepared.digest)
            try:
                if not known:
                    ingest.store_objects(
                        prepared,
                        self.objects,
                        register,
                        known_chunked,
                        self.chunking,
                        artifact.name,
                        show,
                    )
                    self.objects.flush()
                contents = catalog.Contents(
                    prepared.size,
                    prepared.file_count,
                    prepared.entries(),
                    prepared.chunk_lists(self.chunking),
                    self.chunking,
                    prepared.new_bytes,
                    prepared.shared_bytes,
                )
                with write_session(self.engine) as session:
                    row, _created = catalog.commit_version(
                        session,
                        project=project,
                        name=artifact.name,
                        type_=artifact.type,
                        contents=contents,
                        digest=prepared.digest,
                        description=artifact.description,
                        metadata=artifact.metadata,
                        run_id=run_id,
                        aliases=aliases,
                    )
                    catalog.clear_pending(session, writer)
                    return self._version(session, row)
            except BaseException:
                with contextlib.suppress(Exception), write_session(self.engine) as session:
                    catalog.clear_pending(session, writer)
                raise

    def _use(self, ref: str | ArtifactVersion, run_id: str, project: str) -> ArtifactVersion:
        version = ref if isinstance(ref, ArtifactVersion) else self.artifact(ref, project=project)
        with write_session(self.engine) as session:
            # A run reading back its own output (directly, or made from it by another run)
            # is not recorded as an input: that edge would make the lineage loop.
            pk = catalog.run_pk(session, run_id)
            if not traversal.version_descends_from_run(session, version.id, pk):
                catalog.add_edge(session, pk, version.id, "in")
        return version

    # -- reading bytes ---------------------------------------------------------------

    def _open_entry(self, label: str, entry: ManifestEntry) -> BinaryIO:
        if entry.uri is None:
            assert entry.digest is not None
            chunks = self._chunk_lists([entry]).get(entry.digest)
            if chunks is not None:
                return self._open_chunked(label, chunks)
            return self.objects.open(entry.digest, label)
        problem = None if entry.digest is not None else check_reference(entry)
        if problem:
            raise IntegrityError(f"{label}: {problem}", [Problem(label, entry.path, problem)])
        raw = open_reference(entry)
        if entry.digest is None:
            return raw
        return io.BufferedReader(VerifyingReader(raw, entry.digest, label), BLOCK_SIZE)

    def _open_chunked(self, label: str, chunks: ChunkList, *, cached: bool = False) -> BinaryIO:
        """A stream of a chunked file that fetches each chunk it needs, verified (through the
        local cache with ``cached``, for downloads from remote locations)."""
        location = self.objects

        def fetch(index: int) -> bytes:
            name = f"{label}: {chunks.describe(index)}"
            if cached:
                return self.cache.read(location, chunks.digests[index], name)
            return location.read_bytes(chunks.digests[index], name)

        ahead = 0 if location.is_local else TRANSFER_WORKERS
        return io.BufferedReader(ChunkedReader(chunks, fetch, label, ahead), BLOCK_SIZE)

    def _download(
        self,
        version: ArtifactVersion,
        root: str | os.PathLike[str] | None,
        *,
        progress: bool | None = None,
        link: str = "auto",
    ) -> Path:
        from .download import materialise

        if root is None:
            root = self.cache_dir / "artifacts" / version.project / version.name / version.version
        return materialise(self, version, Path(root), show_progress=progress, link=link)

    # -- checking and collecting -----------------------------------------------------

    def _problems(self, versions: Iterable[ArtifactVersion]) -> list[Problem]:
        checked: dict[str, str | None] = {}
        chunked: dict[str, list[str]] = {}  # a chunked file's problems, by its digest

        def actual(digest: str) -> str | None:
            if digest not in checked:
                if len(checked) >= CHECKED_DIGESTS:  # flat memory for huge versions
                    checked.clear()
                checked[digest] = self.objects.actual_digest(digest)
            return checked[digest]

        problems: list[Problem] = []
        for version in versions:
            found = actual(version.digest)
            if found is None:
                problems.append(
                    Problem(version.ref, "", f"manifest object {version.digest} is missing")
                )
            elif found != version.digest:
                problems.append(
                    Problem(version.ref, "", f"manifest object {version.digest} is corrupted")
                )
            for page in pages(version.iter_entries(), PAGE_ENTRIES):
                lists = self._chunk_lists(page)
                for entry in page:
                    if entry.uri is not None:
                        message = check_reference(entry)
                        if message:
                            problems.append(Problem(version.ref, entry.path, message))
                        continue
                    assert entry.digest is not None
                    chunks = lists.get(entry.digest)
                    if chunks is not None:
                        if entry.digest not in chunked:
                            if len(chunked) >= CHECKED_DIGESTS:
                                chunked.clear()
                            chunked[entry.digest] = self._chunk_problems(chunks)
                        problems.extend(
                            Problem(version.ref, entry.path, m) for m in chunked[entry.digest]
                        )
                        continue
                    found = actual(entry.digest)
                    if found is None:
                        problems.append(
                            Problem(version.ref, entry.path, f"object {entry.digest} is missing")
                        )
                    elif found != entry.digest:
                        problems.append(
                            Problem(
                                version.ref,
                                entry.path,
                                f"object {entry.digest} is corrupted (its bytes hash to {found})",
                            )
                        )
        return problems

    def _chunk_problems(self, chunks: ChunkList) -> list[str]:
        """What is wrong with a chunked file: each missing or corrupted chunk by its place,
        then the chunks put together, then the chunk list kept in the object location."""
        messages: list[str] = []
        whole = new_hasher()
        workers = 1 if self.objects.is_local else TRANSFER_WORKERS
        fetched = in_order(
            lambda i: self.objects.raw_bytes(chunks.digests[i]), len(chunks), workers
        )
        for index, (digest, data) in enumerate(zip(chunks.digests, fetched, strict=True)):
            if data is None:
                messages.append(f"{chunks.describe(index)} is missing")
                continue
            found = hash_bytes(data)
            if found != digest:
                messages.append(
                    f"{chunks.describe(index)} is corrupted (its bytes hash to {found})"
                )
            whole.update(data)
        if not messages and whole.hexdigest() != chunks.digest:
            messages.append(
                f"its {len(chunks)} chunks put together hash to {whole.hexdigest()}, "
                f"expected {chunks.digest}"
            )
        stored = self.objects.read_chunk_list(chunks.digest)
        if stored is None:
            messages.append(f"the chunk list of {chunks.digest} is missing")
        else:
            try:
                same = ChunkList.from_bytes(stored).digests == chunks.digests
            except IntegrityError:
                same = False
            if not same:
                messages.append(
                    f"the chunk list of {chunks.digest} in the object location is unreadable "
                    "or names other chunks than the catalog's"
                )
        return messages

    def _verify_or_raise(self, version: ArtifactVersion) -> None:
        problems = self._problems([version])
        if problems:
            listing = "; ".join(str(p) for p in problems)
            raise IntegrityError(f"{version.ref} failed verification: {listing}", problems)

    def verify(self, ref: str | ArtifactVersion | None = None) -> list[Problem]:
        """Re-hash the objects and references of one version, or of every committed
        version; return the problems found (empty when all is well)."""
        if ref is not None:
            return self._problems([self.artifact(ref)])
        versions: list[ArtifactVersion] = []
        with read_session(self.engine) as session:
            for artifact, _project in catalog.list_artifacts(session):
                versions.extend(
                    self._version(session, row)
                    for row in catalog.list_versions(session, artifact.id)
                )
        return self._problems(versions)

    def push(
        self,
        other: Store | str | os.PathLike[str],
        refs: Sequence[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> TransferReport:
        """Copy versions (``refs``, or all when None) with everything upstream of them,
        their runs, edges and aliases, and only the objects missing there, to ``other``
        (a Store, a store folder or a forebear.toml). Idempotent and resumable."""
        from .sync import transfer

        return transfer(self, _as_store(other), refs, show_progress=progress)

    def pull(
        self,
        other: Store | str | os.PathLike[str],
        refs: Sequence[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> TransferReport:
        """Copy versions from ``other`` into this store; the mirror of `push`."""
        from .sync import transfer

        return transfer(_as_store(other), self, refs, show_progress=progress)

    def gc(self, dry_run: bool = False) -> list[str]:
        """Delete objects no committed version references (leftovers of crashed work) and
        return their digests, or those that would be deleted with ``dry_run``.

        Objects that a live writer is storing but has not committed yet are kept. The
        collection holds the catalog's write lock, so no writer can start relying on an
        object while it is being judged garbage.
        """
        host = socket.gethostname()
        cutoff = catalog.stale_before(PENDING_EXPIRY_HOURS)
        with write_session(self.engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("LOCK TABLE pending_objects IN EXCLUSIVE MODE"))
            keep = catalog.all_object_digests(session)
            for pending in catalog.list_pending(session):
                alive = (
                    _pid_alive(pending.pid) if pending.host == host else pending.created_at > cutoff
                )
                if alive:
                    keep.add(pending.digest)
                elif not dry_run:
                    session.delete(pending)
            garbage = [d for d in self.objects.iter_digests() if d not in keep]
            # a chunk list is kept while its file is: by its whole-file digest
            lists = [d for d in self.objects.iter_chunk_lists() if d not in keep]
            if not dry_run:
                for digest in garbage:
                    self.objects.delete(digest)
                for digest in lists:
                    self.objects.delete_chunk_list(digest)
        if not dry_run:
            self.objects.clean_tmp(TMP_EXPIRY_SECONDS)
        return sorted({*garbage, *lists})


def _as_store(other: Store | str | os.PathLike[str]) -> Store:
    return other if isinstance(other, Store) else open(other)


def open(path_or_url: str | os.PathLike[str] | None = None, **options: Any) -> Store:
    """Open (creating if needed) the store in a folder, or the one a database URL names."""
    if path_or_url is None:
        return Store(**options)
    settings = config.settings_for_path(path_or_url)
    return Store(settings.db_url, settings.objects_url, **options)
