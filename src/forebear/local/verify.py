"""`verify`: re-hash what committed versions need, and check the catalog against what the
object location says about each version."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any, cast

from ..chunking import ChunkList, in_order
from ..content import ContentReader
from ..db import packs as db_packs
from ..db.engine import write_session
from ..errors import ForebearError, IntegrityError, Problem
from ..hashing import hash_bytes, new_hasher
from ..manifest import PAGE_ENTRIES, ManifestEntry, ManifestWriter, pages
from ..objects import TRANSFER_WORKERS, ObjectLocation
from ..references import check_reference

if TYPE_CHECKING:
    from ..records import VersionData
    from .backend import LocalBackend

# Objects verify remembers having checked (an object shared by many entries is read once).
CHECKED_DIGESTS = 100_000


class _Discard(io.RawIOBase):
    """A sink that keeps nothing: a manifest re-written from the catalog is only hashed."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def problems(backend: LocalBackend, versions: Iterable[VersionData]) -> list[Problem]:
    """Everything wrong with these versions: missing or corrupted objects, chunks and
    references, and catalog entries that are not the version's manifest."""
    content = ContentReader(backend)
    objects = content.objects
    checked: dict[str, str | None] = {}
    chunked: dict[str, list[str]] = {}  # a chunked file's problems, by its digest

    def actual(digest: str) -> str | None:
        if digest not in checked:
            checked[digest] = objects.actual_digest(digest)
        return checked[digest]

    def check_ahead(page: list[ManifestEntry], lists: dict[str, ChunkList]) -> None:
        """Re-hash a page's whole objects at once (every core, or many requests)."""
        if len(checked) >= CHECKED_DIGESTS:  # flat memory for huge versions
            checked.clear()
        wanted = {
            e.digest
            for e in page
            if e.uri is None and e.digest is not None and e.digest not in lists
        }
        checked.update(objects.actual_digests(wanted - checked.keys()))

    found: list[Problem] = []
    for version in versions:
        stored = actual(version.digest)
        if stored is None:
            found.append(Problem(version.ref, "", f"manifest object {version.digest} is missing"))
        elif stored != version.digest:
            found.append(Problem(version.ref, "", f"manifest object {version.digest} is corrupted"))
        writer = ManifestWriter(cast(IO[bytes], _Discard()))
        purged = {r.path for r in backend.redactions(version.id)}  # their bytes are gone
        try:
            for page in pages(content.iter_entries(version.id), PAGE_ENTRIES):
                lists = content.chunk_lists(page)
                check_ahead([e for e in page if e.path not in purged], lists)
                for entry in page:
                    writer.add(entry)
                    if entry.path in purged:
                        continue
                    found.extend(
                        Problem(version.ref, entry.path, message)
                        for message in _entry_problems(entry, lists, chunked, actual, objects)
                    )
        except IntegrityError as exc:  # a malformed catalog row
            found.append(Problem(version.ref, "", str(exc)))
            continue
        listed = writer.finish()
        if listed != version.digest:
            found.append(
                Problem(
                    version.ref,
                    "",
                    f"the catalog's entries of this version hash to {listed}, not to its "
                    f"digest {version.digest}: the catalog was changed outside forebear",
                )
            )
    if found and backend.read_only is None:
        # lost without forebear removing them: the next log of those files must look each
        # object up again (and store what is missing), not trust its record
        with contextlib.suppress(ForebearError), write_session(backend.engine) as session:
            db_packs.count_forgetting(session)
    return found


def _entry_problems(
    entry: ManifestEntry,
    lists: dict[str, ChunkList],
    chunked: dict[str, list[str]],
    actual: Callable[[str], str | None],
    objects: ObjectLocation,
) -> list[str]:
    if entry.uri is not None:
        message = check_reference(entry)
        return [message] if message else []
    assert entry.digest is not None
    chunks = lists.get(entry.digest)
    if chunks is not None:
        if entry.digest not in chunked:
            if len(chunked) >= CHECKED_DIGESTS:
                chunked.clear()
            chunked[entry.digest] = chunk_problems(objects, chunks)
        return chunked[entry.digest]
    stored = actual(entry.digest)
    if stored is None:
        return [f"object {entry.digest} is missing"]
    if stored != entry.digest:
        return [f"object {entry.digest} is corrupted (its bytes hash to {stored})"]
    return []


def chunk_problems(objects: ObjectLocation, chunks: ChunkList) -> list[str]:
    """What is wrong with a chunked file: each missing or corrupted chunk by its place,
    then the chunks put together, then the chunk list kept in the object location."""
    messages: list[str] = []
    whole = new_hasher()
    workers = 1 if objects.is_local else TRANSFER_WORKERS
    fetched = in_order(lambda i: objects.raw_bytes(chunks.digests[i]), len(chunks), workers)
    for index, (digest, data) in enumerate(zip(chunks.digests, fetched, strict=True)):
        if data is None:
            messages.append(f"{chunks.describe(index)} is missing")
            continue
        found = hash_bytes(data)
        if found != digest:
            messages.append(f"{chunks.describe(index)} is corrupted (its bytes hash to {found})")
        whole.update(data)
    if not messages and whole.hexdigest() != chunks.digest:
        messages.append(
            f"its {len(chunks)} chunks put together hash to {whole.hexdigest()}, "
            f"expected {chunks.digest}"
        )
    stored = objects.read_chunk_list(chunks.digest)
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
