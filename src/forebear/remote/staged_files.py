"""A large file sent to a server whose objects are on S3, without its bytes passing
through the server.

The chunks the server lacks go to staging keys in parts of about `PART_BYTES`, by
presigned PUTs, a few at once. One request to the server (``POST /api/v1/files/publish``)
carries the file's chunk list, then the name of each part as soon as it and those before
it are uploaded, then an empty line: the server reads each part as its name arrives, in
file order, as it would the chunks sent in one stream (`forebear.objects.file_streams`),
so that it checks and stores while the client still uploads.
"""

from __future__ import annotations

import os
import queue
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ..chunking import ChunkList
from ..errors import IntegrityError, StoreError
from ..hashing import Progress
from ..objects.file_streams import encode_header
from .client import ServerClient

PART_BYTES = 4 << 20  # a cut file goes to S3 in staged parts of about this size
PARTS_IN_FLIGHT = 4  # parts sent at once (each in memory while it is sent)
SIGNED_AT_ONCE = 16  # part URLs signed in one request, shortly before they are used
BLOCK = 1 << 20

Name = tuple[str, str]  # a part's staging id and key


def stage_file(
    client: ServerClient, local_path: str, chunks: ChunkList, sent: list[int], progress: Progress
) -> None:
    """Send the ``sent`` chunks of the file at ``local_path`` to staging keys while the
    server checks and stores them and proves the chunk list; the server's refusal is
    raised as its error. Parts sent before a failure stay staged (gc removes them)."""
    names: queue.SimpleQueue[Name | BaseException | None] = queue.SimpleQueue()

    def announced() -> Iterator[Name]:
        while (name := names.get()) is not None:
            if isinstance(name, BaseException):
                raise name  # the request breaks off: the server stores no chunk list
            yield name

    with ThreadPoolExecutor(1) as publisher:
        header = encode_header(chunks, sent)
        publishing = publisher.submit(client.publish_file, header, announced())
        try:
            with open(local_path, "rb") as src:
                sender = PartSender(client, src.fileno(), chunks, progress)
                sender.send(split_parts(chunks, sent), names.put, publishing)
        except BaseException as error:
            names.put(StoreError(f"the upload of {local_path} broke off"))
            refusal = publishing.exception()  # the server's answer, if that was the cause
            if isinstance(error, _Refused) and refusal is not None:
                raise refusal from None
            raise
        names.put(None)
        publishing.result()


class _Refused(Exception):
    """The server answered before the last part was announced: its answer is the error."""


class PartSender:
    """Uploads one file's parts in order, `PARTS_IN_FLIGHT` at once."""

    def __init__(
        self, client: ServerClient, descriptor: int, chunks: ChunkList, progress: Progress
    ) -> None:
        self.client, self.descriptor, self.chunks, self.progress = (
            client, descriptor, chunks, progress,
        )  # fmt: skip

    def send(
        self,
        parts: list[list[int]],
        announce: Callable[[Name], None],
        publishing: Future[None],
    ) -> None:
        """Upload ``parts`` and ``announce`` each, in order, once it and those before it
        are staged; stop as soon as the server answered (it refused the file)."""
        keys = [uuid.uuid4().hex for _ in parts]  # a name of the client's, under a new id
        in_flight: deque[tuple[Name, int, Future[None]]] = deque()

        def settle(most: int) -> None:
            while len(in_flight) > most:
                name, size, future = in_flight.popleft()
                future.result()
                self.progress(size)
                if publishing.done():
                    raise _Refused()
                announce(name)

        with ThreadPoolExecutor(PARTS_IN_FLIGHT) as pool:
            try:
                for start in range(0, len(parts), SIGNED_AT_ONCE):
                    window = range(start, min(start + SIGNED_AT_ONCE, len(parts)))
                    sizes = {keys[n]: self.size(parts[n]) for n in window}
                    targets = self.client.upload_urls(sizes)
                    for n in window:
                        target = targets[keys[n]]
                        upload = pool.submit(self.upload, parts[n], target["url"])
                        in_flight.append(((target["id"], keys[n]), sizes[keys[n]], upload))
                        settle(PARTS_IN_FLIGHT)
                settle(0)
            finally:
                for _, _, future in in_flight:
                    future.cancel()

    def size(self, part: Sequence[int]) -> int:
        return sum(self.chunks.sizes[index] for index in part)

    def upload(self, part: Sequence[int], url: str) -> None:
        """One part, read from the file and sent whole (so that it can be sent again)."""
        data = b"".join(chunk_bytes(self.descriptor, self.chunks, part))
        self.client.put_presigned(url, data, len(data))


def split_parts(chunks: ChunkList, sent: Sequence[int]) -> list[list[int]]:
    """The ``sent`` chunks in parts of at most `PART_BYTES` (or one chunk), in order."""
    parts: list[list[int]] = []
    size = 0
    for index in sent:
        if not parts or size + chunks.sizes[index] > PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(index)
        size += chunks.sizes[index]
    return parts


def chunk_bytes(descriptor: int, chunks: ChunkList, sent: Sequence[int]) -> Iterator[bytes]:
    """The bytes of the ``sent`` chunks of an open file, in order, a block at a time."""
    for index in sent:
        offset, left = chunks.offsets[index], chunks.sizes[index]
        while left:
            block = os.pread(descriptor, min(left, BLOCK), offset)
            if not block:
                raise IntegrityError(f"the file of {chunks.digest} got shorter while it was sent")
            offset += len(block)
            left -= len(block)
            yield block
