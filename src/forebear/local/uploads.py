"""Committing a version whose bytes a client uploaded to a server: the last steps of the
commit protocol (`commit`), with nothing taken on trust.

The client hashed its files, uploaded the objects the server lacked (each checked against
its digest as it arrived) and the manifest itself; it then names the manifest and sends the
chunk lists of the large files it cut. Here, under a lease:

1. the manifest is read back (checked) and must be canonical;
2. every file must be one the user may use: in a version they may read, or sent by them
   (``held``); a chunked file counts when all its chunks are;
3. every object must be present with its size (a missing one is named, to upload again);
4. each new chunk list is checked by hashing its chunks end to end against the file's
   digest, then written (one the object location holds already was checked when it was
   written: by a file upload, `objects.file_streams`, or by a writer with the store's own
   credentials);
5. the version is committed in one transaction (`commit.commit_logged`);
6. the user's receipts stop holding its objects off gc: the version holds them now.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..artifacts import Artifact
from ..chunk_storing import trusted
from ..chunking import MIN_THRESHOLD, Chunking, ChunkList
from ..db import drafts as db_drafts
from ..db import versions as db_versions
from ..db.engine import Session, read_session
from ..errors import IntegrityError, InvalidInput
from ..hashing import new_hasher
from ..manifest import (
    PAGE_ENTRIES,
    ManifestWriter,
    UnreadableManifest,
    pages,
    read_entries,
)
from ..paths import check_alias, check_name
from ..records import VersionData
from ..spool import DuplicateKey, Spool
from .commit import catalog_of, commit_logged
from .drafts import require_live
from .leases import Lease

if TYPE_CHECKING:
    from ..objects import ObjectLocation
    from .backend import LocalBackend

CHECK_GROUP = 8 << 20  # a new chunk list's chunks are read back this many bytes at a time


def commit_uploaded(
    backend: LocalBackend,
    *,
    project: str,
    name: str,
    type_: str,
    description: str | None,
    metadata: dict[str, Any],
    digest: str,
    chunk_lists: Sequence[ChunkList],
    run_id: str | None,
    aliases: Sequence[str],
    tags: Sequence[str],
    ttl: dt.timedelta | None,
    new_bytes: int,
    held: Callable[[set[str]], set[str]],
    uploaded: Callable[[set[str]], set[str]],
    base: tuple[int, str] | None = None,
    release: Callable[[list[str]], None] | None = None,
) -> VersionData:
    """Commit the version whose manifest object is ``digest``; see the module docstring.
    ``held`` answers which digests the user may use; ``uploaded`` which of them the user
    sent (the server checked those as they arrived: they need no second hashing).
    ``base``: the version (id, label) a draft was made from, which must still be live.
    ``release`` is told every object of the version once it is committed: the user's
    receipts held them off gc until then (`db.access.held_by_uploads`)."""
    check_name(project, "project")
    artifact = Artifact(name, type_, description, metadata)  # checks name, type, metadata
    aliases = [check_alias(a) for a in aliases]
    tags = [check_alias(t, "tag") for t in tags]
    backend.require_writable()

    def base_live(session: Session) -> None:
        if base is not None:
            require_live(db_drafts.base_state(session, base[0]), base[1])

    with read_session(backend.engine) as session:
        base_live(session)
    objects = backend.objects
    requested = {c.digest: c for c in chunk_lists}
    with _read_uploaded(objects, digest) as manifest:
        if not manifest.count:
            raise InvalidInput(f"artifact {name!r} is empty; add files with add_file/add_dir first")
        withheld = set(backend.purged_in(project, name, digest))  # purged: never stored back
        new_lists, known_lists = manifest.chunk_lists(requested, withheld, backend.chunk_lists)
        chunking = _one_chunking(new_lists.values(), backend.chunking)
        lists = {**known_lists, **new_lists}
        chunk_sizes = {
            d: s for c in lists.values() for d, s in zip(c.digests, c.sizes, strict=True)
        }
        _check_held(manifest, lists, chunk_sizes, digest, held, withheld)
        with Lease(backend.engine) as lease:
            # the chunks and the manifest at once, the whole files a page at a time
            lease.register([*lists, *chunk_sizes, digest])
            missing = _Named()
            for whole in manifest.whole_files(lists, withheld):
                lease.register(whole)
                missing.add(_absent(backend, objects, whole, uploaded))
            missing.add(_absent(backend, objects, chunk_sizes, uploaded))
            if missing.count:
                raise InvalidInput(
                    f"{missing.count} objects of this version are not on the server: "
                    f"{', '.join(missing.first)}; upload them and commit again"
                )
            for chunks in new_lists.values():
                if objects.read_chunk_list(chunks.digest) != chunks.to_bytes():  # else proven
                    _check_chunk_list(backend, chunks)  # when it was stored (a file upload)
                    objects.put_chunk_list(chunks.digest, chunks.to_bytes())
            # a list no version needs may have gone with gc (its catalog row stays): again
            committed = catalog_of(backend).committed(list(known_lists))
            for file in sorted(set(known_lists) - committed):
                objects.put_chunk_list(file, known_lists[file].to_bytes())
            for whole in manifest.whole_files(lists, withheld):
                _pack_uploads(objects, whole)
            _pack_uploads(objects, {**chunk_sizes, **objects.sizes([digest])})
            objects.flush()
            stored = manifest.stored_size(withheld)
            new = min(max(new_bytes, 0), stored)  # the client's word, within bounds
            contents = db_versions.Contents(
                manifest.size,
                manifest.count,
                iter(manifest.rows),
                list(new_lists.values()),
                chunking,
                new,
                stored - new,
            )

            version = commit_logged(
                backend, lease, artifact, contents, digest, project=project, run_id=run_id,
                aliases=aliases, tags=tags, ttl=ttl, before=base_live,
            )  # fmt: skip
        if release is not None:  # the version holds them now (were it lost first, the
            # hold would end at its time: a lease period)
            for whole in manifest.whole_files(lists, withheld):
                release(list(whole))
            release([*lists, *chunk_sizes, digest])
    return version


def _one_chunking(lists: Any, default: Chunking) -> Chunking:
    found = {json.dumps(c.chunking.to_dict(), sort_keys=True): c.chunking for c in lists}
    if len(found) > 1:
        raise InvalidInput("the chunk lists of one version must all use the same chunking")
    return next(iter(found.values()), default)


def _check_held(
    manifest: _Uploaded,
    lists: dict[str, ChunkList],
    chunk_sizes: dict[str, int],
    digest: str,
    held: Callable[[set[str]], set[str]],
    withheld: set[str],
) -> None:
    """Refuse a version naming bytes its writer neither sent nor may read: a digest alone
    must never be a way to reach another project's data."""
    usable = held(set(chunk_sizes) | {digest})
    if digest not in usable:
        raise InvalidInput("upload the manifest before committing it")
    refused = _Named()
    for page in manifest.rows.batches(PAGE_ENTRIES):
        files = {d for _, d, _, uri, _ in page if uri is None and d is not None} - withheld
        may = held(files)
        refused.add(
            [
                path
                for path, d, _, uri, _ in page
                if uri is None
                and d is not None
                and d not in withheld
                and d not in may
                and not (d in lists and set(lists[d].digests) <= usable)
            ]
        )
    if refused.count:
        raise InvalidInput(
            f"{refused.count} files of this version were not uploaded by you and are in no "
            f"version you may read: {', '.join(refused.first)}; upload their bytes"
        )


def _absent(
    backend: LocalBackend,
    objects: ObjectLocation,
    wanted: dict[str, int],
    uploaded: Callable[[set[str]], set[str]],
) -> list[str]:
    """Which of ``wanted`` (digest: size) the store lacks. One the user did not send is
    relied on as `trusted` says."""
    present = objects.present(wanted)
    suspects = present - uploaded(present)
    present = (present - suspects) | trusted(objects, suspects, catalog_of(backend).committed)
    return sorted(set(wanted) - present)


class _Named:
    """How many of something were found, and the first few, to name in an error."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, names: list[str]) -> None:
        self.count += len(names)
        self.first.extend(names[: max(0, 5 - len(self.first))])


class _Uploaded:
    """An uploaded manifest read back: its entries as rows in path order (spooled to disk
    past a few tens of thousands: a server keeps flat memory however many files a client
    logs), and their count and size."""

    def __init__(self) -> None:
        self.rows = Spool(width=5)
        self.count = 0
        self.size = 0

    def chunk_lists(
        self,
        requested: dict[str, ChunkList],
        withheld: set[str],
        stored: Callable[[list[str]], dict[str, ChunkList]],
    ) -> tuple[dict[str, ChunkList], dict[str, ChunkList]]:
        """The chunk lists of the files stored in chunks, a page at a time: those sent
        with the commit (``requested``: each must add up to its file's size), and those
        the catalog holds (``stored``) for the others large enough to have been cut."""
        sent: dict[str, ChunkList] = {}
        known: dict[str, ChunkList] = {}
        for page in self.rows.batches(PAGE_ENTRIES):
            large = []
            for _, d, size, uri, _ in page:
                if uri is not None or d is None or d in withheld:
                    continue
                if d in requested:
                    if requested[d].size != size:
                        raise InvalidInput(f"the chunk list of {d} does not add up to its size")
                    sent[d] = requested[d]
                elif size >= MIN_THRESHOLD:  # a smaller file is never cut
                    large.append(d)
            if large:
                known.update(stored(large))
        return sent, known

    def whole_files(
        self, lists: dict[str, ChunkList], withheld: set[str]
    ) -> Iterator[dict[str, int]]:
        """A page at a time, the files stored whole (not by ``lists``, not ``withheld``):
        digest and size."""
        for page in self.rows.batches(PAGE_ENTRIES):
            whole = {
                d: size
                for _, d, size, uri, _ in page
                if uri is None and d is not None and d not in withheld and d not in lists
            }
            if whole:
                yield whole

    def stored_size(self, withheld: set[str]) -> int:
        """The bytes of the files the store holds for this version (each file counted,
        as a log on this machine counts them)."""
        return sum(
            size
            for page in self.rows.batches(PAGE_ENTRIES)
            for _, d, size, uri, _ in page
            if uri is None and d is not None and d not in withheld
        )


@contextlib.contextmanager
def _read_uploaded(objects: ObjectLocation, digest: str) -> Iterator[_Uploaded]:
    """The uploaded manifest ``digest``, which must be in canonical form, read back a
    block at a time. Written again as it is read: the bytes read are the manifest the
    digest names only if they are those of its canonical form, which hash to it."""
    uploaded = _Uploaded()
    writer = ManifestWriter(None)
    try:
        with objects.stream(digest, "the uploaded manifest") as stream:
            for page in pages(read_entries(stream), PAGE_ENTRIES):
                rows = [entry.values() for entry in page]
                writer.add_rows(rows)
                uploaded.rows.add(rows)
        if writer.finish() != digest:
            raise ValueError("not canonical")
    except InvalidInput:  # an entry refused by name (an unsafe path)
        uploaded.rows.close()
        raise
    except (ValueError, DuplicateKey, UnreadableManifest) as exc:  # out of order,
        uploaded.rows.close()  # repeated, laid out otherwise, or not JSON at all
        why = f" ({exc})" if isinstance(exc, UnreadableManifest) else ""
        raise InvalidInput(
            f"the uploaded manifest is not in canonical form{why}; log the files again"
        ) from None
    except BaseException:
        uploaded.rows.close()
        raise
    uploaded.count, uploaded.size = writer.count, writer.size
    with contextlib.closing(uploaded.rows):
        yield uploaded


def _check_chunk_list(backend: LocalBackend, chunks: ChunkList) -> None:
    """A new chunk list is true only if its chunks, end to end, hash to the file's digest."""
    hasher = new_hasher()
    digests, sizes = chunks.digests, chunks.sizes  # the sizes were checked against the store
    start = 0
    while start < len(digests):  # a group at a time: packed neighbours in one request
        stop, length = start, 0
        while stop < len(digests) and (stop == start or length + sizes[stop] <= CHECK_GROUP):
            length += sizes[stop]
            stop += 1
        group = bytearray(length)

        def name(index: int, first: int = start) -> str:
            return f"chunk {first + index} of {chunks.digest}"

        with memoryview(group) as view:  # each stored under its digest, checked on arrival
            backend.objects.read_into(digests[start:stop], sizes[start:stop], view, name)
        hasher.update(group)
        start = stop
    if hasher.hexdigest() != chunks.digest:
        raise IntegrityError(
            f"the chunks sent for {chunks.digest} do not make up that file; nothing was committed"
        )


def _pack_uploads(objects: ObjectLocation, sizes: dict[str, int]) -> None:
    """In a format 3 store, put the small objects clients sent (loose, one request each)
    into the packs the commit's flush writes; gc removes the loose copies later, once
    older than its grace period (every reader looks in the packs first)."""
    packs = objects.packs
    if packs is None:
        return
    small = [d for d, size in sizes.items() if packs.takes(size)]
    packed = objects.packed(small)
    for digest in small:
        if digest not in packed:
            packs.add(digest, objects.read_bytes(digest, f"upload {digest}"), "an upload")
