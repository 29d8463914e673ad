"""Reading a request's body: whole up to a limit, or as it arrives (a first line, then so
many bytes at a time, or line by line with waits that time out); and giving up on a body
that stops arriving."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import wire
from ..errors import InvalidInput

BODY_TIMEOUT_SECONDS = 60.0  # as nginx's client_body_timeout: between two pieces of a body
LARGE_JSON = 1 << 20  # a JSON body past this is decoded in a thread, one at a time
LARGE_JSON_AT_ONCE = CapacityLimiter(1)  # waited for in the event loop, not in a thread
MAX_CONTAINERS = 1_000_000  # lists and mappings in one request's JSON
MAX_VALUES = 4_000_000  # values in one request's JSON: a version of a million files' digests

T = TypeVar("T")


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused past ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge(limit)
    pieces, size = [], 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise TooLarge(limit)
        pieces.append(piece)
    return b"".join(pieces)


async def read_json(request: Request, limit: int) -> Any:
    """The request's body (at most ``limit`` bytes) decoded from `forebear.wire` JSON
    (see `decoded`)."""
    return await decoded(await read_body(request, limit), wire.loads)


async def decoded(
    raw: bytes,
    decode: Callable[[bytes], T],
    max_containers: int = MAX_CONTAINERS,
    max_values: int = MAX_VALUES,
) -> T:
    """``decode(raw)`` of a client's JSON, within bounds.

    Decoding is what a hostile body makes costly: 60 MiB of ``[],`` become 21 million
    lists twice over (parsed, then decoded), 3 GB and 14 s of CPU; 60 MiB of ``"ab",``
    become 12 million strings, 1 GB. A large body is therefore refused past
    ``max_containers`` lists and mappings or ``max_values`` values (counted by their
    separators: a legitimate one holds lists of digests and sizes, records and metadata,
    tens of bytes a value), and it is decoded in a thread, one at a time in a worker, so
    that the worker keeps answering and its memory stays bounded however many such
    requests arrive together."""
    if len(raw) <= LARGE_JSON:
        return decode(raw)
    containers = raw.count(b"[") + raw.count(b"{")  # at least these (more in strings)
    values = raw.count(b",") + containers
    if containers > max_containers or values > max_values:
        raise InvalidInput(
            f"malformed request: its JSON holds {values} values, {containers} of them lists "
            f"and mappings; this request takes {max_values} values and {max_containers} "
            "lists and mappings at most"
        )
    return await to_thread.run_sync(decode, raw, limiter=LARGE_JSON_AT_ONCE)


class BodyReader:
    """A request's body read as it arrives: a first line, then so many bytes at a time."""

    def __init__(self, request: Request) -> None:
        self.pieces = request.stream()
        self.buffer = b""
        self.ended = False

    async def more(self) -> bool:
        while not self.ended:
            try:
                piece = await self.pieces.__anext__()
            except StopAsyncIteration:
                self.ended = True
            except ClientDisconnect:
                raise InvalidInput("the request broke off before its end") from None
            else:
                if piece:
                    self.buffer += piece
                    return True
        return False

    async def line(self, limit: int) -> bytes:
        """The first line, without its newline; `TooLarge` past ``limit`` bytes. Each piece
        is searched and kept once (a line of 64 MiB arrives in thousands of pieces)."""
        pieces: list[bytes] = []
        size = 0
        while (end := self.buffer.find(b"\n")) < 0:
            pieces.append(self.buffer)
            size += len(self.buffer)
            self.buffer = b""
            if size > limit:
                raise TooLarge(limit)
            if not await self.more():
                raise InvalidInput("malformed request: its body ended in the middle of a line")
        pieces.append(self.buffer[:end])
        self.buffer = self.buffer[end + 1 :]
        if size + end > limit:
            raise TooLarge(limit)
        return b"".join(pieces)

    async def read(self, size: int) -> bytes:
        """``size`` bytes, or fewer at the end of the body (nothing once it ended): one
        call gathers many of the pieces the body arrives in."""
        pieces, got = [], 0
        while got < size and (self.buffer or await self.more()):
            piece, self.buffer = self.buffer[: size - got], self.buffer[size - got :]
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)


class LineWaiter:
    """The lines of a request's body, waited for a while at a time: a wait that ends
    without a line leaves the read going, for the next wait to take up (a read cut off
    halfway would lose the bytes it took)."""

    def __init__(self, body: BodyReader, limit: int) -> None:
        self.body, self.limit = body, limit
        self.pending: asyncio.Future[bytes] | None = None

    async def next(self, seconds: float | None) -> bytes | None:
        """The next line; None if it did not come within ``seconds``."""
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.body.line(self.limit))
        done, _ = await asyncio.wait({self.pending}, timeout=seconds)
        if not done:
            return None
        finished, self.pending = self.pending, None
        return finished.result()

    def close(self) -> None:
        """Stop a read still going (the request is over); one that failed meanwhile (the
        client gone) is over too, its error already answered for."""
        if self.pending is not None:
            if self.pending.done() and not self.pending.cancelled():
                self.pending.exception()  # retrieved: not reported as never retrieved
            self.pending.cancel()


class IdleBodyLimit:
    """Ends a request whose body stops arriving for ``seconds``: `StalledBody` (408) is
    raised where the request reads its body, so that what it holds (an upload's slot, its
    buffers) is let go, as a request that breaks off is. A client that stalls mid-upload
    (a laptop put to sleep, a lost link, a hostile writer) cannot hold the slots other
    uploads wait for. Only the body is timed: once it has all arrived, waiting on the
    connection (for a disconnect, while a response streams) is not."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = False

        async def timed() -> Message:
            nonlocal arrived
            if arrived:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except asyncio.TimeoutError:
                raise StalledBody(self.seconds) from None
            arrived = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)


class StalledBody(InvalidInput):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"nothing of the request's body arrived for {seconds:g} s, so the server gave it "
            "up; send it again (on a slow link, start the server with a longer --body-timeout)"
        )


class TooLarge(InvalidInput):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request is larger than this server takes ({limit} bytes)")
