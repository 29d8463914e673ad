"""`ServerObjects`: a store's objects as a forebear server hands them out.

Reads ask the server, which checks the user may read the object, then either streams it or
sends the client to a short-lived presigned URL (objects on S3: the bytes never pass
through the server). Writes are PUTs the server checks against the digest as they arrive:
nothing becomes visible under a digest its bytes do not match. Small objects travel in
bundles (`forebear.objects.bundles`): many in one upload, which the server checks object by
object. The client checks every byte it reads again, as with any location.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, BinaryIO, cast

from .. import wire
from ..chunking import ChunkList
from ..errors import IntegrityError, ObjectNotFound, StoreError
from ..hashing import Progress, hash_bytes
from ..objects import TRANSFER_WORKERS, ObjectLocation
from ..objects.bundles import BUNDLE_TARGET, READ_BATCH_OBJECTS, encode_index, read_answer
from ..objects.copying import Joined, read_up_to
from ..objects.file_streams import encode_header
from ..objects.packs import PackWriter
from ..readers import corrupted
from .client import ATTEMPTS, ServerClient, Unreachable
from .staged_files import chunk_bytes, stage_file

BLOCK = 1 << 20
SPOOL_IN_MEMORY = 8 << 20
PUBLISH_BATCH = 256  # objects sent straight to the object store, published in one request
BUNDLES_IN_FLIGHT = 2  # bundles sent at once while the next fills
BATCH_READERS = 4  # batch reads asked at once (each answer up to 8 MiB)
FOLLOW_UP = 256  # objects asked for at least, once an answer left some for later


class ServerObjects(ObjectLocation):
    """Objects behind a forebear server (no filesystem of ours: every operation is a
    request to the server, which applies the user's roles)."""

    is_local = False

    def __init__(
        self,
        client: ServerClient,
        format_version: int,
        *,
        staged: bool,
        bundled_below: int = 0,
        file_uploads: bool = False,
        staged_files: bool = False,
        batch_reads: bool = False,
    ) -> None:
        super().__init__(f"{client.url}/api/v1/objects", cast(Any, None), "")
        self.client = client
        self.format_version = format_version
        self.staged = staged  # uploads go straight to the object store (S3), then checked
        self.bundled_below = bundled_below  # smaller objects go in bundles (0: no bundles)
        self.file_uploads = file_uploads  # a cut file's chunks go in one stream (`put_file`)
        self.staged_files = staged_files  # ...or in staged parts the server reads (S3)
        self.batch_reads = batch_reads  # many small objects read in one request
        self.lock = threading.Lock()
        self.urls: dict[str, dict[str, str]] = {}  # upload URLs handed out with `present`
        self.pending: dict[str, str] = {}  # sent, not yet published: digest -> staging id
        self.bundle: PackWriter | None = None  # the bundle being filled
        self.bundled: set[str] = set()  # in a bundle not yet stored by the server
        self.senders: ThreadPoolExecutor | None = None  # bundles are sent in the background
        self.in_flight: deque[Future[None]] = deque()

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

    def read_together(
        self, digests: Iterable[str], labels: Mapping[str, str]
    ) -> Iterator[tuple[str, bytes | memoryview]]:
        """The small objects among ``digests`` the server sends in batches (packed ones
        the user may read), each checked here again; the others are left out, to read one
        at a time (which says why one cannot be)."""
        if not self.batch_reads:
            return iter(())
        return self._read_batches(list(dict.fromkeys(digests)), labels)

    def _read_batches(
        self, asked: list[str], labels: Mapping[str, str]
    ) -> Iterator[tuple[str, bytes | memoryview]]:
        def read(digests: list[str]) -> tuple[list[tuple[str, bytes]], list[str]]:
            request = wire.dumps({"digests": digests})
            answer = self.client.request("POST", "/api/v1/objects/read", content=request)
            found = read_answer(self.client.checked(answer).content, set(digests))
            objects = list(found.objects)
            for run in found.runs:  # on S3: straight from the object store
                objects.extend(self._fetch_run(*run))
            for digest, data in objects:
                if (actual := hash_bytes(data)) != digest:
                    raise corrupted(labels.get(digest, f"object {digest}"), actual, digest)
            return objects, found.later

        size = READ_BATCH_OBJECTS
        while asked:
            batches = [asked[start : start + size] for start in range(0, len(asked), size)]
            asked = []  # what did not fit in an answer: asked again after these
            fitted = 0  # the most objects one answer carried
            with ThreadPoolExecutor(BATCH_READERS) as pool:
                for start in range(0, len(batches), BATCH_READERS):  # a few answers held
                    for found, later in pool.map(read, batches[start : start + BATCH_READERS]):
                        fitted = max(fitted, len(found))
                        yield from found
                        asked.extend(later)
            if not fitted:  # no answer carried anything: the rest go one at a time
                return
            # large objects (a file's chunks): ask for about what fitted, but never for
            # fewer than FOLLOW_UP (a few large files first in a pack leave small ones
            # later, which would otherwise be asked for a few at a time)
            size = max(fitted, FOLLOW_UP)

    def _fetch_run(
        self, url: str, span: str, members: list[tuple[str, int]]
    ) -> list[tuple[str, bytes]]:
        """A run's objects (unchecked), by its presigned URL and ``Range`` (without the
        token); none where the object store refuses (an expired URL): each is then read
        alone."""
        response = self.client.request("GET", url, bare=True, headers={"Range": span})
        data = response.content
        if response.status_code not in (200, 206) or len(data) != sum(n for _, n in members):
            return []
        objects, offset = [], 0
        for digest, length in members:
            objects.append((digest, data[offset : offset + length]))
            offset += length
        return objects

    def raw_bytes(self, digest: str) -> bytes | None:
        try:
            return self._read_whole(digest, f"object {digest}")
        except ObjectNotFound:
            return None

    def actual_digest(self, digest: str) -> str | None:
        data = self.raw_bytes(digest)
        return None if data is None else hash_bytes(data)

    def _loose_actual_digests(self, digests: Iterable[str]) -> dict[str, str | None]:
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
        # upload URLs only for what goes by presigned PUT: the smaller objects go in bundles
        sign = self.staged and any(size >= self.bundled_below for size in wanted.values())
        request = {"sizes": wanted, "sign": sign, "sign_from": self.bundled_below}
        answer = self.client.post("/api/v1/present", request)
        with self.lock:
            self.urls.update(answer.get("uploads") or {})
            # published at the latest by flush
            sent = {d for d in wanted if d in self.pending or d in self.bundled}
        return set(answer["present"]) | sent

    def _size_or_none(self, digest: str) -> int | None:
        raise StoreError("a forebear server answers which objects are present, not their sizes")

    def _loose_sizes(self, digests: Iterable[str]) -> dict[str, int]:
        raise StoreError("a forebear server answers which objects are present, not their sizes")

    # -- writing -------------------------------------------------------------------------

    def _put_loose_stream(
        self,
        src: BinaryIO,
        digest: str,
        progress: Progress | None = None,
        *,
        source: str = "a stream",
    ) -> None:
        if self.bundled_below:
            head = read_up_to(src, self.bundled_below)
            if len(head) < self.bundled_below:
                self.add_to_bundle(digest, head, source)
                if progress is not None:
                    progress(len(head))
                return
            src = cast(BinaryIO, Joined(head, src))
        if self.staged:  # a presigned PUT needs its length first: spool it
            with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
                while block := src.read(BLOCK):
                    spool.write(block)
                size = spool.tell()
                spool.seek(0)
                self.send_staged(digest, size, spool.read() if size <= BLOCK else spool)
            if progress is not None:
                progress(size)
            return

        def pieces() -> Iterator[bytes]:
            while block := src.read(BLOCK):
                if progress is not None:
                    progress(len(block))
                yield block

        self.client.put_object(digest, pieces())

    def _put_loose_file(
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
            if size < self.bundled_below:
                data = read_up_to(src, self.bundled_below)
                self.add_to_bundle(digest, data, os.fspath(local_path))
                if progress is not None:
                    progress(len(data))
            elif self.staged:
                self.send_staged(digest, size, src.read() if size <= BLOCK else src)
                if progress is not None:
                    progress(size)
            elif size <= BLOCK:  # small: one body, which may be sent again after a failure
                data = src.read()
                self.client.put_object(digest, data)
                if progress is not None:
                    progress(len(data))
            else:
                self._put_loose_stream(src, digest, progress, source=os.fspath(local_path))
        return True

    def _put_loose_files(
        self, items: Sequence[tuple[str | os.PathLike[str], str]], progress: Progress | None = None
    ) -> None:
        def put(item: tuple[str | os.PathLike[str], str]) -> None:
            self.put_file(item[0], item[1], progress, known_missing=True)

        if self.bundled_below:  # small files one after the other into bundles, the rest at once
            large = []
            for item in items:
                if os.path.getsize(item[0]) < self.bundled_below:
                    put(item)
                else:
                    large.append(item)
            items = large
        with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:
            for _ in pool.map(put, items):
                pass

    def _put_loose_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        if not self.present({digest: len(data)}):
            if len(data) < self.bundled_below:
                self.add_to_bundle(digest, data, "a blob")
            elif self.staged:
                self.send_staged(digest, len(data), data)
                self._flush_loose()
            else:
                self.client.put_object(digest, data)
        return digest

    def put_chunked_file(
        self, local_path: str, chunks: ChunkList, missing: set[str], progress: Progress
    ) -> bool:
        """Send the file's chunk list and its ``missing`` chunks, in file order, in one
        request: the server checks each chunk and proves the chunk list as they arrive (no
        request per chunk, no second read of the file's chunks at the commit); to a server
        on S3, they go to staging keys instead, and the server reads them from there. A
        broken connection is resumed: the server is asked again which chunks it holds."""
        if not self.file_uploads:
            return False
        first: dict[str, int] = {}  # each chunk's first place: where its bytes go
        for index, digest in enumerate(chunks.digests):
            first.setdefault(digest, index)
        for attempt in range(ATTEMPTS):
            sent = sorted(index for digest, index in first.items() if digest in missing)
            try:
                if self.staged_files:
                    stage_file(self.client, local_path, chunks, sent, progress)
                else:
                    with open(local_path, "rb") as src:
                        pieces = _chunk_bytes(src.fileno(), chunks, sent, progress)
                        self.client.put_file(encode_header(chunks, sent), pieces)
                return True
            except Unreachable:
                if attempt + 1 >= ATTEMPTS:
                    raise
                missing = set(chunks.unique()) - self.present(chunks.unique())
            except IntegrityError as error:
                raise IntegrityError(
                    f"the bytes of {local_path} sent to the server are not those hashed: did "
                    f"it change while it was being logged? Log it again ({error})"
                ) from None
        return True  # pragma: no cover - the loop returns or raises

    def put_chunk_list(self, digest: str, data: bytes, *, replace: bool = False) -> None:
        """Nothing: the server writes a chunk list itself once it has checked it (as the
        file's stream arrives, or when the version that needs it is committed)."""

    def send_staged(self, digest: str, size: int, body: bytes | IO[bytes]) -> None:
        """Upload one object to its presigned staging URL (the one `present` handed out,
        else a new one); the server checks and publishes sent objects a batch at a time."""
        with self.lock:
            target = self.urls.pop(digest, None)
        if target is None:
            target = self.client.upload_urls({digest: size})[digest]
        self.client.put_presigned(target["url"], body, size)
        with self.lock:
            self.pending[digest] = target["id"]
            batch = dict(self.pending) if len(self.pending) >= PUBLISH_BATCH else {}
            if batch:
                self.pending.clear()
        if batch:
            self.client.publish(batch)

    def add_to_bundle(self, digest: str, data: bytes, source: str) -> None:
        """Add one small object to the bundle being filled (checked against its digest
        first), and send the bundle once it is full."""
        with self.lock:
            if digest in self.bundled:
                return
            if self.bundle is None:
                self.bundle = PackWriter(tempfile.gettempdir(), durable=False)  # sent, then dropped
            self.bundle.add(digest, data, source)
            self.bundled.add(digest)
            full = self.bundle if self.bundle.size >= BUNDLE_TARGET else None
            if full is not None:
                self.bundle = None
        if full is not None:
            self.dispatch(full)

    def dispatch(self, writer: PackWriter) -> None:
        """Send a full bundle in the background while the next one fills; with
        `BUNDLES_IN_FLIGHT` already on their way, wait for the oldest (memory stays flat)."""
        with self.lock:
            if self.senders is None:
                self.senders = ThreadPoolExecutor(BUNDLES_IN_FLIGHT)
            self.in_flight.append(self.senders.submit(self.send_bundle, writer))
            waiting = []
            while len(self.in_flight) > BUNDLES_IN_FLIGHT:
                waiting.append(self.in_flight.popleft())
        for future in waiting:
            future.result()  # a failed send fails the log now

    def sent_bundles(self) -> None:
        """Wait for every bundle on its way; the first failure is raised once all ended."""
        with self.lock:
            futures, self.in_flight = list(self.in_flight), deque()
            senders, self.senders = self.senders, None
        try:
            for future in futures:
                future.exception()  # waits, raises nothing
            for future in futures:
                future.result()
        finally:
            if senders is not None:
                senders.shutdown(wait=True)

    def close(self) -> None:
        """Drop a bundle left unsent (a log that failed before its flush), after the ones
        on their way."""
        with self.lock:
            left, self.bundle = self.bundle, None
        if left is not None:
            left.discard()
        with contextlib.suppress(Exception):
            self.sent_bundles()

    def send_bundle(self, writer: PackWriter) -> None:
        """Send one bundle whole (through the server, or to a staging key on S3) and have
        the server check and store each of its objects."""
        try:
            sealed = writer.seal()
            with open(sealed.path, "rb") as src:
                data = src.read()
            if self.staged:
                target = self.client.upload_urls({sealed.digest: sealed.size})[sealed.digest]
                self.client.put_presigned(target["url"], data, sealed.size)
                try:
                    self.client.publish_bundle(target["id"], sealed.digest, sealed.slots)
                except ObjectNotFound:  # an answer lost, the request sent again: stored?
                    if not self.client.all_present(sealed.slots):
                        raise
            else:
                self.client.put_bundle(encode_index(sealed.slots), data)
        finally:
            writer.discard()
            with self.lock:
                self.bundled.difference_update(writer.slots)

    def _flush_loose(self) -> None:
        """Have the server check and publish every object sent and not yet published (the
        server makes them durable before it commits)."""
        with self.lock:
            last, self.bundle = self.bundle, None
        if last is not None:
            self.dispatch(last)
        self.sent_bundles()
        with self.lock:
            batch, self.pending = dict(self.pending), {}
        items = sorted(batch.items())
        for start in range(0, len(items), PUBLISH_BATCH):
            self.client.publish(dict(items[start : start + PUBLISH_BATCH]))

    def _create_once(self, path: str, body: bytes) -> None:
        raise StoreError("a forebear server's object location is set up by the server")

    def _rewrite_format(self, version: int, store_id: str | None) -> None:
        raise StoreError("a forebear server's object location is set up by the server")

    def will_need(self, digests: Sequence[str]) -> None:
        """A hint only; the server is asked when the bytes are read."""


def _chunk_bytes(
    descriptor: int, chunks: ChunkList, sent: Sequence[int], progress: Progress
) -> Iterator[bytes]:
    """The bytes of the ``sent`` chunks of an open file, in order, a block at a time."""
    for index in sent:
        yield from chunk_bytes(descriptor, chunks, [index])
        progress(chunks.sizes[index])
