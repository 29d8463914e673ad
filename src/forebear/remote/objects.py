"""`ServerObjects`: a store's objects as a forebear server hands them out.

Reads ask the server, which checks the user may read the object, then either streams it or
sends the client to a short-lived presigned URL (objects on S3: the bytes never pass
through the server). Writes are PUTs the server checks against the digest as they arrive:
nothing becomes visible under a digest its bytes do not match. The client checks every
byte it reads again, as with any location.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, cast

from ..errors import ObjectNotFound, StoreError
from ..hashing import Progress, hash_bytes
from ..objects import TRANSFER_WORKERS, ObjectLocation
from .client import ServerClient

BLOCK = 1 << 20
SPOOL_IN_MEMORY = 8 << 20
STAGED_BATCH = 64  # small files sent straight to the object store per round of requests


class ServerObjects(ObjectLocation):
    """Objects behind a forebear server (no filesystem of ours: every operation is a
    request to the server, which applies the user's roles)."""

    is_local = False

    def __init__(self, client: ServerClient, format_version: int, *, staged: bool) -> None:
        super().__init__(f"{client.url}/api/v1/objects", cast(Any, None), "")
        self.client = client
        self.format_version = format_version
        self.staged = staged  # uploads go straight to the object store (S3), then checked

    # -- reading -------------------------------------------------------------------------

    def _open_raw(self, digest: str, name: str) -> BinaryIO:
        """The object's bytes in a local spool (memory, then disk), unchecked."""
        spool = cast(BinaryIO, tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY))  # noqa: SIM115
        try:
            with self._response(digest, name) as response:
                for piece in response.iter_bytes(BLOCK):
                    spool.write(piece)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def _read_whole(self, digest: str, name: str) -> bytes:
        with self._response(digest, name) as response:
            return bytes(response.read())

    @contextlib.contextmanager
    def _response(self, digest: str, name: str) -> Iterator[Any]:
        try:
            response = self.client.object_response(digest)
        except ObjectNotFound:
            raise
        except FileNotFoundError as error:
            raise ObjectNotFound(f"{name} is not on the server (object {digest})") from error
        try:
            yield response
        finally:
            response.close()

    def raw_bytes(self, digest: str) -> bytes | None:
        try:
            return self._read_whole(digest, f"object {digest}")
        except ObjectNotFound:
            return None

    def actual_digest(self, digest: str) -> str | None:
        data = self.raw_bytes(digest)
        return None if data is None else hash_bytes(data)

    def actual_digests(self, digests: Iterable[str]) -> dict[str, str | None]:
        return {d: self.actual_digest(d) for d in digests}

    def read_chunk_list(self, digest: str) -> bytes | None:
        return None  # the client asks the catalog (``chunk_lists``) instead

    # -- what is there -------------------------------------------------------------------

    def present(self, sizes: Any) -> set[str]:
        """The objects stored with these sizes that this user may build on (in a version
        they may read, or sent by them); the others are to be sent."""
        wanted = dict(sizes)
        if not wanted:
            return set()
        return set(self.client.post("/api/v1/present", {"sizes": wanted})["present"])

    def _size_or_none(self, digest: str) -> int | None:
        raise StoreError("a forebear server answers which objects are present, not their sizes")

    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        raise StoreError("a forebear server answers which objects are present, not their sizes")

    # -- writing -------------------------------------------------------------------------

    def put_stream(
        self,
        src: BinaryIO,
        digest: str,
        progress: Progress | None = None,
        *,
        source: str = "a stream",
    ) -> None:
        if self.staged:  # a presigned PUT needs its length first: spool it
            with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
                while block := src.read(BLOCK):
                    spool.write(block)
                size = spool.tell()
                spool.seek(0)
                self.client.staged_upload([(digest, size, spool)])
            if progress is not None:
                progress(size)
            return

        def pieces() -> Iterator[bytes]:
            while block := src.read(BLOCK):
                if progress is not None:
                    progress(len(block))
                yield block

        self.client.put_object(digest, pieces())

    def put_file(
        self,
        local_path: str | os.PathLike[str],
        digest: str,
        progress: Progress | None = None,
        *,
        known_missing: bool = False,
    ) -> bool:
        size = os.path.getsize(local_path)
        if not known_missing and self.present({digest: size}):
            return False
        with open(local_path, "rb") as src:
            if self.staged:
                self.client.staged_upload([(digest, size, src.read() if size <= BLOCK else src)])
                if progress is not None:
                    progress(size)
            elif size <= BLOCK:  # small: one body, which may be sent again after a failure
                data = src.read()
                self.client.put_object(digest, data)
                if progress is not None:
                    progress(len(data))
            else:
                self.put_stream(src, digest, progress, source=os.fspath(local_path))
        return True

    def put_files(
        self, items: Sequence[tuple[str | os.PathLike[str], str]], progress: Progress | None = None
    ) -> None:
        if self.staged:  # small files in batches: one request for URLs, one to publish
            small = [(p, d) for p, d in items if os.path.getsize(p) <= BLOCK]
            large = [(p, d) for p, d in items if os.path.getsize(p) > BLOCK]
            batches = [small[i : i + STAGED_BATCH] for i in range(0, len(small), STAGED_BATCH)]

            def send(batch: list[tuple[str | os.PathLike[str], str]]) -> None:
                loaded = []
                for path, digest in batch:
                    with open(path, "rb") as src:
                        data = src.read()
                    loaded.append((digest, len(data), data))
                self.client.staged_upload(loaded)
                if progress is not None:
                    progress(sum(size for _, size, _ in loaded))

            with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
                for _ in pool.map(send, batches):
                    pass
            items = large

        def put(item: tuple[str | os.PathLike[str], str]) -> None:
            self.put_file(item[0], item[1], progress, known_missing=True)

        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            for _ in pool.map(put, items):
                pass

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        if not self.present({digest: len(data)}):
            self.client.put_object(digest, data)
        return digest

    def put_chunk_list(self, digest: str, data: bytes, *, replace: bool = False) -> None:
        """Nothing: the server writes a chunk list itself once it has checked it, when the
        version that needs it is committed."""

    def flush(self) -> None:
        """Nothing: the server makes objects durable before it commits."""

    def _create_once(self, path: str, body: bytes) -> None:
        raise StoreError("a forebear server's object location is set up by the server")

    def _rewrite_format(self, version: int, store_id: str | None) -> None:
        raise StoreError("a forebear server's object location is set up by the server")

    def will_need(self, digests: Sequence[str]) -> None:
        """A hint only; the server is asked when the bytes are read."""
