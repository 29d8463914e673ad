"""`repair`: store again the objects of committed versions that are missing or corrupted,
from local files whose bytes match (found by content, whatever their names), and rebuild
what the catalog itself describes (manifest objects, chunk lists).

Only bytes that hash to the digest they are stored under are ever written (the same
checked writes as a log), over whatever is there, so a repair cannot make anything worse.
The objects it writes belong to committed versions, so gc keeps them.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, cast

from ..chunking import ChunkList
from ..content import ContentReader
from ..errors import IntegrityError
from ..manifest import PAGE_ENTRIES, ManifestWriter, pages
from ..objects import ObjectLocation
from ..repair_from import restore_from
from ..reports import Missing, RepairReport

if TYPE_CHECKING:
    from ..records import VersionData
    from .backend import LocalBackend

# Objects checked at once (re-hashed on every core, or many requests at a time).
_BATCH = 5000


@dataclass
class _Damage:
    """Damaged objects of the versions checked, by digest: whole objects with their size
    and one entry that needs them, chunks with the chunked file they belong to, and
    manifest objects with their version."""

    whole: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # size, ref, path
    chunks: dict[str, tuple[ChunkList, int, str, str]] = field(default_factory=dict)
    manifests: dict[str, VersionData] = field(default_factory=dict)
    lists: dict[str, ChunkList] = field(default_factory=dict)  # chunk lists to rewrite

    def __bool__(self) -> bool:
        return bool(self.whole or self.chunks or self.manifests or self.lists)


def repair(
    backend: LocalBackend,
    versions: Iterable[VersionData],
    source: str | os.PathLike[str] | None,
) -> RepairReport:
    content = ContentReader(backend)
    stat_cache = backend.stat_cache
    report = RepairReport()
    versions = list(versions)
    damage = _find_damage(content, versions, report, backend)
    objects = content.objects
    for digest, version in damage.manifests.items():
        if _rebuild_manifest(content, version):
            report.restored[digest] = "the catalog"
    for digest, chunks in damage.lists.items():
        objects.put_chunk_list(digest, chunks.to_bytes(), replace=True)
        report.restored[f"chunk list {digest}"] = "the catalog"
    if source is not None:
        whole = {d: size for d, (size, _ref, _path) in damage.whole.items()}
        parts = {c: (chunk_list, i) for c, (chunk_list, i, *_) in damage.chunks.items()}
        restore_from(source, objects, whole, parts, stat_cache, report)
        damage.whole = {d: found for d, found in damage.whole.items() if d in whole}
        damage.chunks = {c: found for c, found in damage.chunks.items() if c in parts}
    objects.flush()
    report.missing.extend(Missing(ref, path, d) for d, (_, ref, path) in damage.whole.items())
    report.missing.extend(Missing(ref, path, d) for d, (_, _, ref, path) in damage.chunks.items())
    return report


def _find_damage(
    content: ContentReader, versions: list[VersionData], report: RepairReport, backend: LocalBackend
) -> _Damage:
    """What is damaged; purged entries are not damage (their bytes must stay gone)."""
    objects = content.objects
    damage = _Damage()
    manifests = objects.actual_digests(v.digest for v in versions)
    report.checked += len(manifests)
    for version in versions:
        if manifests.get(version.digest) != version.digest:
            damage.manifests[version.digest] = version
    seen_files: set[str] = set()
    for version in versions:
        purged = {r.path for r in backend.redactions(version.id)}
        for page in pages(content.iter_entries(version.id), PAGE_ENTRIES):
            lists = content.chunk_lists(page)
            whole: dict[str, tuple[int, str, str]] = {}
            for entry in page:
                if entry.uri is not None or entry.digest is None or entry.digest in seen_files:
                    continue
                if entry.path in purged:
                    continue
                seen_files.add(entry.digest)
                chunks = lists.get(entry.digest)
                if chunks is None:
                    whole[entry.digest] = (entry.size, version.ref, entry.path)
                    continue
                _check_chunks(objects, chunks, version.ref, entry.path, damage, report)
            for batch in _batches(sorted(whole), _BATCH):
                found = objects.actual_digests(batch)
                report.checked += len(found)
                for digest, actual in found.items():
                    if actual != digest:
                        damage.whole[digest] = whole[digest]
    return damage


def _check_chunks(
    objects: ObjectLocation,
    chunks: ChunkList,
    ref: str,
    path: str,
    damage: _Damage,
    report: RepairReport,
) -> None:
    found = objects.actual_digests(chunks.digests)
    report.checked += len(found)
    for index, digest in enumerate(chunks.digests):
        if found.get(digest) != digest and digest not in damage.chunks:
            damage.chunks[digest] = (chunks, index, ref, path)
    stored = objects.read_chunk_list(chunks.digest)
    try:
        same = stored is not None and ChunkList.from_bytes(stored).digests == chunks.digests
    except IntegrityError:
        same = False
    if not same:
        damage.lists[chunks.digest] = chunks


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rebuild_manifest(content: ContentReader, version: VersionData) -> bool:
    """Write a version's manifest object again from the catalog's entries, if they still
    hash to the version's digest (they must, or `verify` reports the catalog)."""
    with tempfile.SpooledTemporaryFile(8 << 20) as sink:
        writer = ManifestWriter(cast(IO[bytes], sink))
        for entry in content.iter_entries(version.id):
            writer.add(entry)
        if writer.finish() != version.digest:
            return False
        sink.seek(0)
        content.objects.put_stream(
            cast(io.BufferedReader, sink), version.digest, source="the catalog's entries"
        )
    return True
