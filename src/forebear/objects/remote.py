"""`RemoteLocation`: objects on an object store or any other non-local fsspec filesystem.

An upload is hashed as it streams and discarded before it completes if the bytes differ
from their name (one PUT that is never sent, or a multipart upload that is aborted), so
an object store, where a completed PUT is atomic, never shows a wrong or partial object.
Many small requests run a few at a time: round trips, not bandwidth, bound them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Container, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import fsspec.asyn

from ..errors import IntegrityError, InvalidInput, ObjectNotFound
from ..hashing import Progress, hash_bytes, hash_stream
from ..processes import PerProcess
from .base import (
    FORMAT_FILE,
    SMALL_BATCH,
    TRANSFER_WORKERS,
    ObjectLocation,
    backend_errors,
    check_unchanged,
    copy_hashing,
    missing,
)
from .formatfile import let_go
from .listing import StoredObject
from .packs import byte_range

STAGING = "staging"  # uploads through presigned URLs land here, checked before publishing
PUBLISHING = threading.BoundedSemaphore(TRANSFER_WORKERS)  # uploads checked at once, per process
PART_SIZE = 5 << 20  # a pack goes up in parts of this size (S3's minimum is 5 MiB)
RANGE_READ = 4 << 20  # an object on S3 is read in ranges of this size (one GET when smaller)
PUBLISH_IN_MEMORY = 16 << 20  # a staged upload up to this size is checked and written from memory


class RemoteLocation(ObjectLocation):
    is_local = False

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The filesystem; made anew in a process forked from the one that opened the
        location (a data loader's worker), since fsspec's asynchronous filesystems, S3's
        among them, refuse to be used across a fork."""
        return self._fs.get()

    @fs.setter
    def fs(self, fs: fsspec.AbstractFileSystem) -> None:
        self._fs = PerProcess(lambda: type(fs)(**fs.storage_options), fs)

        def signer() -> Any:
            config = dict(fs.storage_options.get("config_kwargs") or {})
            config["signature_version"] = "s3v4"
            return type(fs)(**{**fs.storage_options, "config_kwargs": config})

        self._signer: PerProcess[Any] = PerProcess(signer)

    @property
    def on_s3(self) -> bool:
        return "s3" in self.fs.protocol

    @property
    def can_presign(self) -> bool:
        return callable(getattr(self.fs, "sign", None)) and self.on_s3

    def _open_raw(self, digest: str, name: str) -> BinaryIO:
        """On S3, an object comes in ranged GETs of `RANGE_READ` bytes, the first of which
        also says whether there is more: opening it as a file would first ask for its size,
        a HEAD per object (half the requests of a download of many small files)."""
        if not self.on_s3 or self.packed([digest]):
            return super()._open_raw(digest, name)
        path = self.path_of(digest)
        with backend_errors(f"cannot read {name}"):
            try:
                first = _read_range_or_end(self.fs, path, 0)
            except FileNotFoundError as exc:
                raise missing(self.url, digest, name) from exc
        if len(first) < RANGE_READ:
            return io.BytesIO(first)
        return io.BufferedReader(_RangedObject(self.fs, path, first))

    def presigned_url(self, digest: str, seconds: int) -> tuple[str, str | None] | None:
        """A loose object's key; a packed object's pack, signed (SigV4) together with the
        ``Range`` of the object's bytes in it: the URL reads those bytes and nothing else
        of the pack, which may hold objects the reader may not see (S3 refuses it with any
        other range, or none)."""
        if not self.can_presign:
            return None
        slot = self.packed([digest]).get(digest)
        with backend_errors(f"cannot sign a URL for object {digest}"):
            if slot is None:
                return self._presigned("get_object", [self.path_of(digest)], seconds)[0], None
            if slot.length == 0 or self.packs is None:
                return None  # an empty object has no range to sign: the server sends it
            signed_range = byte_range(slot.offset, slot.length)
            path = self.packs.path(slot.pack)
            return (
                self._presigned("get_object", [path], seconds, Range=signed_range)[0],
                signed_range,
            )

    def presigned_ranges(self, ranges: Sequence[tuple[str, int, int]], seconds: int) -> list[str]:
        """URLs of byte ranges of packs, each (pack, offset, length), signed together
        (SigV4) with its ``Range`` (``bytes=offset-end``): S3 refuses one with any other
        range, or none. The caller signs only ranges whose every byte the reader may see."""
        assert self.packs is not None and self.can_presign
        paths = [self.packs.path(pack) for pack, _, _ in ranges]
        each = [{"Range": byte_range(offset, length)} for _, offset, length in ranges]
        with backend_errors("cannot sign URLs of packed objects"):
            return self._presigned("get_object", paths, seconds, each=each)

    def _presigned(
        self,
        method: str,
        paths: Sequence[str],
        seconds: int,
        each: Sequence[dict[str, str]] | None = None,
        **params: str,
    ) -> list[str]:
        """Presigned URLs of ``method`` on ``paths``, signed together (one trip to the
        loop) with SigV4, which covers headers given in ``params`` (a ``Range``). s3fs's
        own `sign` uses version 2, which signs no header and which newer S3 regions and
        buckets refuse, so a client of its own made with version 4 signs. ``each``: more
        parameters of each path's URL (its own ``Range``)."""
        signer = self._signer.get()

        async def sign_all() -> list[Any]:
            client = await signer.set_session()
            return list(
                await asyncio.gather(
                    *(
                        client.generate_presigned_url(
                            method,
                            Params=dict(
                                zip(("Bucket", "Key"), signer.split_path(p)[:2], strict=True),
                                **params,
                                **(each[i] if each is not None else {}),
                            ),
                            ExpiresIn=seconds,
                        )
                        for i, p in enumerate(paths)
                    )
                )
            )

        return [str(url) for url in fsspec.asyn.sync(signer.loop, sign_all)]

    def staged_uploads(self, digests: Sequence[str], seconds: int) -> dict[str, tuple[str, str]]:
        """Signed together (one trip to the loop)."""
        if not self.can_presign or not digests:
            return {}
        ids = {digest: uuid.uuid4().hex for digest in digests}
        paths = [self._path(f"{STAGING}/{ids[d]}/{d}") for d in digests]
        with backend_errors("cannot sign upload URLs"):
            urls = self._presigned("put_object", paths, seconds)
        return {d: (url, ids[d]) for d, url in zip(digests, urls, strict=True)}

    def publish_many(self, staged: dict[str, str]) -> None:
        """Hash each staged upload (one read), write it under its digest if it matches
        (one PUT for a small one; a copy inside the store for a large one), then drop
        every staged copy in one request. The first mismatch is raised once the others
        are done, and nothing is written under a digest its bytes do not match."""
        paths = {d: self._path(f"{STAGING}/{i}/{d}") for d, i in staged.items()}
        failures: list[BaseException] = []

        def publish(digest: str) -> None:
            try:
                self._publish_one(paths[digest], digest)
            except BaseException as error:  # noqa: BLE001 - raised below, after the rest
                failures.append(error)

        try:
            with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
                for _ in pool.map(publish, sorted(staged)):
                    pass
        finally:
            with contextlib.suppress(Exception):
                self.fs.rm(sorted(paths.values()))
        if failures:
            raise failures[0]

    def read_staged(self, staging_id: str, key: str, limit: int) -> bytes:
        """One GET of at most ``limit`` + 1 bytes (more is refused unread), then the
        staged copy goes whatever it held."""
        path = self._path(f"{STAGING}/{staging_id}/{key}")
        try:
            with backend_errors(f"cannot read the upload {key}"):
                try:
                    data = bytes(self.fs.cat_file(path, start=0, end=limit + 1))
                except FileNotFoundError:
                    raise ObjectNotFound(f"no upload {key} arrived under that staging id") from None
        finally:
            with contextlib.suppress(Exception):
                self.fs.rm_file(path)
        if len(data) > limit:
            raise InvalidInput(f"the upload {key} is larger than the {limit} bytes allowed")
        return data

    def _publish_one(self, staged: str, digest: str) -> None:
        with PUBLISHING:  # at most this many uploads in memory, however many batches
            self._publish_held(staged, digest)

    def _publish_held(self, staged: str, digest: str) -> None:
        """Hash a staged upload and write it under its digest unless an intact copy is
        there already: a stored object is never replaced by other bytes that merely hash
        alike (xxh3 is no cryptographic hash). A large upload is first copied to a key no
        URL was signed for, and that copy is hashed and published: a client cannot rewrite
        what is published between its check and its copy."""
        private = self._path(f"{STAGING}/{uuid.uuid4().hex}/{digest}")
        copied = False
        try:
            with backend_errors(f"cannot read the upload of object {digest}"):
                try:
                    data = bytes(self.fs.cat_file(staged, start=0, end=PUBLISH_IN_MEMORY + 1))
                    size = len(data)
                    if size <= PUBLISH_IN_MEMORY:  # whole: one GET, no HEAD first
                        actual = hash_bytes(data)
                    else:
                        copied = True
                        self.fs.copy(staged, private)
                        with self.fs.open(private, "rb") as src:
                            actual = hash_stream(src)[0]
                except FileNotFoundError:
                    raise ObjectNotFound(
                        f"no upload of object {digest} arrived under that staging id"
                    ) from None
            if actual != digest:
                raise IntegrityError(f"the bytes sent do not hash to {digest}; nothing was stored")
            if self.actual_digest(digest) == digest:  # after the check: costs what was sent
                return
            with backend_errors(f"cannot publish object {digest}"):
                if size <= PUBLISH_IN_MEMORY:
                    self.fs.pipe_file(self.path_of(digest), data)  # one PUT: whole or absent
                else:
                    self.fs.copy(private, self.path_of(digest))
        finally:
            if copied:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(private)

    def clean_tmp(self, older_than: float) -> list[str]:
        """Staged uploads older than ``older_than`` seconds (a client that never asked for
        them to be published)."""
        root = self._path(STAGING)
        cutoff = time.time() - older_than
        old: list[str] = []
        with backend_errors(f"cannot list {root!r}"):
            try:
                found = self.fs.find(root, detail=True)
            except FileNotFoundError as exc:
                let_go(exc)
                return []
            for path, info in found.items():
                modified = info.get("LastModified") or info.get("mtime")
                stamp = modified.timestamp() if hasattr(modified, "timestamp") else modified
                if isinstance(stamp, (int, float)) and stamp < cutoff:
                    old.append(path)
            if old:
                self.fs.rm(old)
        return old

    def _create_once(self, path: str, body: bytes) -> None:
        # Object stores have no portable create-if-absent: of two racing creators the
        # last write wins, and the store id recorded in the catalog settles which store
        # this is (see `local.identity`).
        self.fs.pipe_file(path, body)

    def _rewrite_format(self, version: int, store_id: str | None) -> None:
        path = self._path(FORMAT_FILE)
        with backend_errors(f"cannot update {path!r}"):
            self.fs.pipe_file(path, self._format_body(version, store_id))

    def _size_or_none(self, digest: str) -> int | None:
        with backend_errors(f"cannot check object {digest}"):
            try:
                return int(self.fs.info(self.path_of(digest))["size"])
            except FileNotFoundError as exc:
                let_go(exc)
                return None

    def _loose_sizes(self, digests: Iterable[str]) -> dict[str, int]:
        """Few objects are checked one request each; more by listing: one request for the
        prefixes that exist, then one per existing two-hex prefix involved (a page lists
        up to 1,000 objects), instead of one request per object."""
        wanted = set(digests)
        if len(wanted) <= SMALL_BATCH:
            found = {d: self._size_or_none(d) for d in wanted}
            return {d: s for d, s in found.items() if s is not None}
        base = self._path("objects")
        with backend_errors(f"cannot list objects under {base!r}"):
            try:  # one request tells which prefixes exist at all
                names = self.fs.ls(base, detail=False, refresh=True)
            except FileNotFoundError as exc:
                let_go(exc)
                return {}
        existing = {str(n).rstrip("/").rsplit("/", 1)[-1] for n in names}
        prefixes = sorted({d[:2] for d in wanted} & existing)
        present: dict[str, int] = {}
        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            for listed in pool.map(self._list_prefix, prefixes):
                for stored in listed:  # a listing can be far larger than the batch
                    if stored.digest in wanted:
                        present[stored.digest] = stored.size
        return present

    def iter_objects(
        self, folder: str = "objects", *, skip: Container[str] = frozenset()
    ) -> Iterator[StoredObject]:
        """Prefix folders listed `TRANSFER_WORKERS` at a time (a listing is a round trip
        per 1,000 objects), a few ahead of the caller at most."""
        prefixes = self._prefixes(folder)
        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            ahead: deque[Future[list[StoredObject]]] = deque()
            for prefix in prefixes:
                ahead.append(pool.submit(self._list_prefix, prefix, folder, skip))
                if len(ahead) > 2 * TRANSFER_WORKERS:
                    yield from ahead.popleft().result()
            while ahead:
                yield from ahead.popleft().result()

    def _put_loose_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        if self.has(digest, len(data)):
            return digest
        with backend_errors(f"cannot write object {digest}"):
            self.fs.pipe_file(self.path_of(digest), data)  # one PUT: whole or absent
        return digest

    def put_chunk_list(self, digest: str, data: bytes, *, replace: bool = False) -> None:
        self._mark_chunked()
        path = self.chunk_list_path(digest)
        with backend_errors(f"cannot write the chunk list of {digest}"):
            try:
                if not replace and int(self.fs.info(path)["size"]) == len(data):
                    return
            except FileNotFoundError as exc:
                let_go(exc)
            self.fs.pipe_file(path, data)

    def _put_loose_file(
        self,
        local_path: str | os.PathLike[str],
        digest: str,
        progress: Progress | None = None,
        *,
        known_missing: bool = False,
    ) -> bool:
        if not known_missing and self.has(digest, os.path.getsize(local_path)):
            return False
        with open(local_path, "rb") as src:
            self._put_loose_stream(src, digest, progress, source=os.fspath(local_path))
        return True

    def _put_loose_stream(
        self,
        src: BinaryIO,
        digest: str,
        progress: Progress | None = None,
        *,
        source: str = "a stream",
    ) -> None:
        with backend_errors(f"cannot store {source!r}"):
            target = self.path_of(digest)
            upload = self.fs.open(target, "wb")
            try:
                check_unchanged(source, digest, copy_hashing(src, upload, progress)[0])
            except BaseException:
                self._discard(upload, target)
                raise
            upload.close()

    def _put_loose_files(
        self, items: Sequence[tuple[str | os.PathLike[str], str]], progress: Progress | None = None
    ) -> None:
        """Several uploads at a time."""
        if len(items) <= 1:
            for local_path, digest in items:
                self.put_file(local_path, digest, progress, known_missing=True)
            return
        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            futures = [
                pool.submit(self.put_file, path, digest, progress, known_missing=True)
                for path, digest in items
            ]
            for future in futures:
                future.result()

    def _flush_loose(self) -> None:
        """Nothing to do: an object store has made an object durable when its PUT returns."""

    def store_file(self, local_path: str, path: str) -> None:
        """Streamed in parts (a pack need not be in memory whole); the object store makes
        it visible only once complete, and a failed upload is abandoned.

        On S3, s3fs's own multipart upload reads each part from the file once and sends it
        as it is (aborting the upload if a part fails): a buffered file object would hold
        each part three times over (its buffer, the part cut from it, the request's copy),
        two parts more at the peak."""
        if self.on_s3:
            self.fs.put_file(local_path, path, chunksize=PART_SIZE, max_concurrency=1)
            return
        with open(local_path, "rb") as src:
            upload = self.fs.open(path, "wb", block_size=PART_SIZE)
            try:
                shutil.copyfileobj(src, upload, 1 << 20)
            except BaseException:
                self._discard(upload, path)
                raise
            upload.close()

    def _discard(self, upload: Any, target: str) -> None:
        """Abandon an upload so nothing stays under ``target``: abort it where the backend
        can (S3 multipart), and remove whatever a backend published on open or close."""
        discard = getattr(upload, "discard", None)
        with contextlib.suppress(Exception):
            if callable(discard):
                discard()
                upload.closed = True  # discarded: closing it later must not upload anything
            else:
                upload.close()
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(target)

    def _loose_actual_digests(self, digests: Iterable[str]) -> dict[str, str | None]:
        """Several downloads at a time."""
        wanted = sorted(set(digests))
        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            return dict(zip(wanted, pool.map(self.actual_digest, wanted), strict=True))


def _read_range_or_end(fs: Any, path: str, start: int) -> bytes:
    """Up to `RANGE_READ` bytes of an object on S3 from ``start``; none past its end (S3
    refuses a range that starts there, which for an empty object is any range)."""
    try:
        return bytes(fs.cat_file(path, start=start, end=start + RANGE_READ))
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return b""


class _RangedObject(io.RawIOBase):
    """An object on S3 read a range at a time, from its first range already fetched: one
    range held at once, and no HEAD."""

    def __init__(self, fs: Any, path: str, first: bytes) -> None:
        super().__init__()
        self.fs = fs
        self.path = path
        self.pending = memoryview(first)
        self.offset = len(first)
        self.ended = len(first) < RANGE_READ

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not len(self.pending) and not self.ended:
            data = _read_range_or_end(self.fs, self.path, self.offset)
            self.offset += len(data)
            self.ended = len(data) < RANGE_READ
            self.pending = memoryview(data)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self.pending))
        view[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n
