"""Copying versions between stores (`Store.push` / `Store.pull`).

A transfer copies the chosen versions together with everything upstream of them (so "which
data produced this model?" has its answer in the target too), the runs that produced or used
them (with their histories), their lineage edges and their aliases, and only the objects the
target lacks.

It follows the commit protocol: objects first (each verified on the way), then one catalog
transaction per version. A crash leaves at most unreachable objects in the target; running
the transfer again skips what is already there, so it is idempotent and resumable.
Version numbers are the target's own: a version keeps its digest, and gets the next free
number of its artifact in the target when it arrives there.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import progress
from ..chunk_storing import trusted
from ..chunking import ChunkList
from ..db import aliases as db_aliases
from ..db import chunks as db_chunks
from ..db import purges as db_purges
from ..db import registry as db_registry
from ..db import runs as db_runs
from ..db import traversal
from ..db import versions as db_versions
from ..db.aliases import LATEST
from ..db.engine import read_session, write_session
from ..db.schema import RunRow
from ..errors import IntegrityError, InvalidInput, StoreError
from ..manifest import Manifest
from ..objects import TRANSFER_WORKERS
from ..paths import check_alias, check_name, parse_ref
from ..records import VersionData
from ..reports import TransferReport
from .leases import Lease

if TYPE_CHECKING:
    from ..backend import Backend
    from .backend import LocalBackend


@dataclass
class _Selection:
    versions: list[VersionData]
    entries: dict[int, Manifest]
    aliases: dict[int, list[str]]
    runs: dict[str, tuple[RunRow, str]]  # run id -> (row, project name)
    edges: list[tuple[str, str, int]]  # (run id, direction, version id), in the source
    chunk_lists: dict[str, ChunkList]  # of the chunked files, by their digest


def _select(source: LocalBackend, refs: Sequence[str] | None) -> _Selection:
    with read_session(source.engine) as session:
        if refs is None:
            ids = set(db_versions.all_version_ids(session))
        else:
            ids = set()
            for ref in refs:
                version = db_versions.get_version(session, parse_ref(ref), None)
                ids |= traversal.closure(session, version.id, upstream=True)
        # deleted versions stay behind (their lineage edges with them)
        versions = sorted(
            (v for v in db_versions.load_versions(session, ids).values() if v.deleted_at is None),
            key=lambda v: (v.created_at, v.id),
        )
        ids = {v.id for v in versions}
        redacted = db_purges.redacted_among(session, ids)
        if redacted:
            names = ", ".join(sorted(v.ref for v in versions if v.id in redacted))
            raise InvalidInput(
                f"{names} hold purged files, whose bytes are gone: push and pull cannot copy "
                "them; choose other versions, or delete these first"
            )
        entries = {v.id: Manifest(tuple(db_versions.list_entries(session, v.id))) for v in versions}
        changed = sorted(v.ref for v in versions if entries[v.id].digest != v.digest)
        if changed:  # another store must not take in what this one cannot vouch for
            raise IntegrityError(
                f"{', '.join(changed)}: the catalog's entries do not hash to the version's "
                "digest: the catalog was changed outside forebear, and nothing was copied; "
                "restore it from a backup ('forebear verify' lists what else)"
            )
        chunk_lists = db_chunks.chunk_lists_for(
            session,
            {e.digest for m in entries.values() for e in m if e.digest and e.uri is None},
        )
        aliases = db_aliases.aliases_for(session, ids)
        runs: dict[str, tuple[RunRow, str]] = {}
        edges: list[tuple[str, str, int]] = []
        for run, project, direction, version_id in db_runs.edges_of_versions(session, ids):
            runs.setdefault(run.id, (run, project))
            edges.append((run.id, direction, version_id))
    return _Selection(versions, entries, aliases, runs, edges, chunk_lists)


def _copy_objects(
    source: LocalBackend,
    target: LocalBackend,
    selection: _Selection,
    report: TransferReport,
    show: bool,
    lease: Lease,
) -> dict[str, ChunkList]:
    """Copy the objects the target lacks (for a chunked file, the chunks it lacks, unless
    it holds the file already, whole or in chunks), held from gc by ``lease``. Returns the
    chunk lists the target gets with the versions."""
    sizes: dict[str, int] = {}  # every object the target needs
    files: dict[str, int] = {}
    for version in selection.versions:
        sizes[version.digest] = len(selection.entries[version.id].to_bytes())
        for entry in selection.entries[version.id]:
            if entry.uri is None and entry.digest is not None:
                files[entry.digest] = entry.size
    with read_session(target.engine) as session:
        chunked_there = db_chunks.chunked_among(session, selection.chunk_lists)
    candidates = [d for d in selection.chunk_lists if d not in chunked_there]
    whole_there = (
        target.objects.present({d: selection.chunk_lists[d].size for d in candidates})
        if candidates
        else set()
    )
    lists: dict[str, ChunkList] = {}
    for digest, size in files.items():
        chunks = selection.chunk_lists.get(digest)
        if chunks is None:
            sizes[digest] = size
        elif digest not in chunked_there and digest not in whole_there:
            lists[digest] = chunks
            sizes.update(chunks.unique())
    lease.register([*sizes, *lists])

    def committed(digests: list[str]) -> set[str]:
        with read_session(target.engine) as session:
            return db_chunks.committed_among(session, digests)

    present = trusted(target.objects, target.objects.present(sizes), committed)
    missing = sorted(set(sizes) - present)
    total = sum(sizes[d] for d in missing)
    with progress.bar("copying objects", total, show) as tick:

        def copy(digest: str) -> None:
            with source.objects.stream(digest) as stream:
                target.objects.put_stream(stream, digest, tick, source=f"object {digest}")

        with ThreadPoolExecutor(1 if target.objects.is_local else TRANSFER_WORKERS) as pool:
            for _ in pool.map(copy, missing):
                pass
    for digest, chunks in lists.items():
        target.objects.put_chunk_list(digest, chunks.to_bytes())
    target.objects.flush()
    report.objects_copied += len(missing)
    report.bytes_copied += total
    return lists


def transfer(
    source: LocalBackend,
    target: LocalBackend,
    refs: Sequence[str] | None = None,
    *,
    show_progress: bool | None = None,
) -> TransferReport:
    """Copy versions (``refs``, or everything) and their upstream from ``source`` to
    ``target``; see the module docstring for what travels."""
    target.require_writable()
    report = TransferReport()
    selection = _select(source, refs)
    with Lease(target.engine) as lease:
        lists = _copy_objects(
            source, target, selection, report, progress.wanted(show_progress), lease
        )
        _commit(source, target, selection, lists, report, lease)
    return report


def _commit(
    source: LocalBackend,
    target: LocalBackend,
    selection: _Selection,
    lists: dict[str, ChunkList],
    report: TransferReport,
    lease: Lease,
) -> None:
    """Insert the runs (with their histories), then each version with its edges and
    aliases, in the target."""
    from .commit import check_catalog

    with write_session(target.engine) as session:
        lease.check(session)
        check_catalog(target, session)
        for run, project in selection.runs.values():
            check_name(project, "project")
            if not db_runs.has_run(session, run.id):
                db_runs.copy_run(session, run, project)
                with read_session(source.engine) as reading:
                    db_runs.copy_history(session, run.id, db_runs.history_rows(reading, run.id))
                report.runs_copied += 1
    placed: dict[int, int] = {}  # version id here -> id in the target
    for version in selection.versions:
        with write_session(target.engine) as session:
            lease.check(session)
            check_catalog(target, session)
            manifest = selection.entries[version.id]
            contents = db_versions.Contents(
                manifest.size,
                len(manifest),
                (entry.values() for entry in manifest.entries),
                list({e.digest: lists[e.digest] for e in manifest if e.digest in lists}.values()),
                version.chunking,
                version.new_bytes,
                version.shared_bytes,
            )
            if version.source_version_id is not None:  # a registry link: link it again
                source_row = db_versions.version_row(session, placed[version.source_version_id])
                row, created = db_registry.link(
                    session, source_row, version.name, actor=target.actor, run_id=None,
                    aliases=[], reason=None,
                )  # fmt: skip
            else:
                row, created = db_versions.place_version(session, version, contents)
            placed[version.id] = row.id
            for run_id, direction, version_id in selection.edges:
                if version_id == version.id:
                    db_runs.add_edge(session, db_runs.run_pk(session, run_id), row.id, direction)
            for alias in selection.aliases.get(version.id, []):
                check_alias(alias)  # names from another store are checked like users' own
                if alias != LATEST:
                    db_aliases.set_alias(session, row.artifact_id, alias, row.id, None)
            db_versions.move_latest_if_newer(session, row)
            number = f"{version.name}:v{row.number}"
            report.versions[f"{version.project}/{version.name}:v{version.number}"] = (
                f"{version.project}/{number}"
            )
            if created:
                report.created.append(f"{version.project}/{number}")
    with write_session(target.engine) as session:
        lease.release(session)
    target.catalog_file.check()


def transfer_between(
    source: Backend, target: Backend, refs: Sequence[str] | None, *, show_progress: bool | None
) -> TransferReport:
    """`transfer` between two backends, both of which must be reached directly."""
    from .lazy import reached_directly

    local_source, local_target = reached_directly(source), reached_directly(target)
    if local_source is None or local_target is None:
        raise StoreError("push and pull copy between stores this process reaches directly")
    return transfer(local_source, local_target, refs, show_progress=show_progress)
