"""The HTTP face of a forebear server: one ASGI application over one local backend.

- ``GET /healthz`` (the process answers) and ``GET /readyz`` (the catalog answers too);
- ``GET /api/v1/info``: the store's id and chunking, and who the token belongs to;
- ``POST /api/v1/call/{method}``: one backend method, through `GuardedBackend`, its
  arguments and result in `forebear.wire` form;
- ``POST /api/v1/present``, ``PUT /api/v1/objects/{digest}``, ``POST /api/v1/commit``:
  logging (which objects to send; each sent object checked against its digest as it
  arrives; the version committed once everything is there); with the objects on S3,
  ``POST /api/v1/uploads`` hands out presigned URLs of staging keys instead, and
  ``POST /api/v1/uploads/publish`` checks each staged upload before it becomes the object;
- ``POST /api/v1/bundles`` (an index line, then the bytes) and, on S3,
  ``POST /api/v1/bundles/publish`` (a bundle sent to a staging key): many small objects in
  one upload, each checked against its digest before it is stored (`objects.bundles`);
- ``POST /api/v1/files`` (a header line, then the bytes): a large file's chunk list and the
  chunks the server lacks, in file order, checked and stored as they arrive and the chunk
  list proven before it is written (`objects.file_streams`);
- ``POST /api/v1/files/publish`` (the same header line, then a line naming each part as
  it is staged, then an empty line): on S3, a large file's chunks go to staging keys in
  parts of about 4 MiB, which the server reads once, in order, as it would the stream
  above (`forebear.remote.staged_files`);
- ``GET /api/v1/objects/{digest}``: an object the user may read (a short-lived presigned
  URL when the objects live on S3, else the bytes, streamed). A packed object's URL is
  its pack's, signed for the object's byte range only: the redirect says which in
  ``Forebear-Range``, which the client sends as ``Range``;
- ``POST /api/v1/objects/read``: many small objects the user may read in one answer
  (packed ones: their bytes, read with their neighbours and checked; on S3, presigned
  URLs of runs of them, each signed for its byte range alone; `objects.bundles`);
- the web UI under ``/``, behind a login.

Every request but the health checks needs ``Authorization: Bearer fbt_...`` (or the web
UI's session cookie); the token's user is checked on every request, so a revoked token
stops working at once, on every replica.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar, cast

from anyio import CapacityLimiter, from_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from .. import wire
from ..errors import (
    AuthenticationError,
    ForebearError,
    IntegrityError,
    InvalidInput,
    PermissionDenied,
    StoreError,
)
from ..hashing import new_hasher
from ..local.lazy import reached_directly
from ..objects import TRANSFER_WORKERS
from ..objects.bundles import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_OBJECTS,
    answer_reads,
    bundled_below,
    checked_index,
    checked_read_request,
    store_bundle,
)
from ..objects.file_streams import (
    MAX_HEADER_BYTES,
    StagedParts,
    parse_header,
    receive_file,
    unsent_digests,
)
from ..records import INTEGER_LIMIT, Principal
from ..web.security import Guard
from .access import AccessLog
from .arguments import DIGEST, check_call, check_commit
from .bodies import (
    BODY_TIMEOUT_SECONDS,
    BodyReader,
    IdleBodyLimit,
    LineWaiter,
    StalledBody,
    TooLarge,
    decoded,
    read_body,
    read_json,
)
from .memory import give_back
from .policy import GuardedBackend
from .session import WebLogin, bearer

if TYPE_CHECKING:
    from ..chunking import ChunkList
    from ..store import Store

LOG = logging.getLogger("forebear.server.access")
STAGING_ID = re.compile(r"^[0-9a-f]{32}$")
# The backend methods a client may call by name; the rest (log, close...) are not offered.
CALLS = frozenset({
    "get_version", "version_by_id", "find_version", "latest_versions", "artifact_versions",
    "all_versions", "alias_history", "aliases", "set_alias", "remove_alias", "version_at",
    "link", "protect_alias", "protected_aliases", "add_webhook", "webhooks", "remove_webhook",
    "deliveries", "deliver_webhooks", "entries", "entries_at", "entry_count", "chunk_lists",
    "held", "purged_in", "create_run", "get_run", "list_runs", "count_runs", "update_run",
    "log_history", "run_history", "beat_run", "use", "runs_of_version", "versions_of_run",
    "reachable", "lineage", "tags", "redactions", "edit_version", "delete_version",
    "restore_version", "delete_run", "edit_run", "resume_run", "alert_run",
    "set_retention", "retention_policies", "prune", "which", "purge", "audit", "verify",
    "repair", "gc", "upgrade", "rebuild_index",
    "projects", "counts", "add_user", "users", "disable_user", "grant", "revoke",
    "create_token", "tokens", "revoke_token",
})  # fmt: skip
MAX_CALL_BYTES = 64 << 20  # a call's arguments: pages of entries, chunk lists
MAX_OBJECT_BYTES = 5 << 30  # one object (S3's limit for one PUT)
SPOOL_IN_MEMORY = 4 << 20  # an upload in flight stays in memory up to this, then on disk
PRESIGNED_SECONDS = 300
MAX_SIGNED = 20_000  # upload URLs signed for one request (a client asks for a batch's)
MAX_PART_LINE = 128  # a staged part's name: ["<32 hex>", "<32 hex>"]
MAX_INDEX_BYTES = MAX_BUNDLE_OBJECTS * 64  # a bundle's index line: one row per object
# bundles checked and stored, and chunked files received, at once (memory); waited for in
# the event loop, so that requests waiting their turn hold no thread of the pool
BUNDLES_AT_ONCE = CapacityLimiter(2)
FILES_AT_ONCE = CapacityLimiter(2)
MAX_HEADER_CONTAINERS = 2_000_000  # a file upload's header: a list per chunk
MAX_HEADER_VALUES = 6_000_000
FILE_WORKERS = 8  # a file's chunks stored at once (each holds a copy while it is written)

T = TypeVar("T")


def create_app(
    store: Store,
    allowed_hosts: Iterable[str] = ("*",),
    body_timeout: float = BODY_TIMEOUT_SECONDS,
) -> ASGIApp:
    """The server for one store (its backend must be local: the server is where the
    catalog and objects are reached from); a request whose body stops arriving for
    ``body_timeout`` seconds is answered 408."""
    inner = reached_directly(store.backend)
    if inner is None:
        raise StoreError("a forebear server serves a store it reaches itself, not another server")
    login = WebLogin(inner)

    def principal_of(request: Request) -> Principal:
        token = bearer(request)
        if token is None:
            raise AuthenticationError(
                "this forebear server needs a token: set FOREBEAR_TOKEN or run "
                "'forebear login URL' (an admin creates one with 'forebear token create')"
            )
        return inner.authenticate(token)

    async def authenticated(request: Request) -> Principal:
        """The request's user, checked before anything of the request is read."""
        principal = await run_in_threadpool(principal_of, request)
        request.state.user = principal.name
        return principal

    async def acting(
        request: Request, work: Callable[[GuardedBackend], T], principal: Principal | None = None
    ) -> T:
        """``work`` in a worker thread, for the request's user (checked here if not yet)."""
        principal = principal or await authenticated(request)

        def call() -> T:
            with inner.acting_for(principal):
                return work(GuardedBackend(inner, principal))

        return await run_in_threadpool(call)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        try:
            await run_in_threadpool(inner.ping)
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            LOG.warning("not ready: %s", type(error).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def info(request: Request) -> Response:
        def about(guarded: GuardedBackend) -> dict[str, Any]:
            return {
                "store_id": inner.store_id,
                "chunking": inner.chunking.to_dict(),
                "format_version": inner.objects.format_version,
                "objects": "s3" if inner.objects.can_presign else "streamed",
                "bundled_below": bundled_below(inner.objects),
                "file_uploads": True,
                "staged_files": inner.objects.can_presign,
                "batch_reads": True,
                "user": guarded.principal.name,
                "admin": guarded.principal.admin,
            }

        return JSONResponse(await acting(request, about))

    async def call(request: Request) -> Response:
        principal = await authenticated(request)
        method = request.path_params["method"]
        if method not in CALLS:
            raise InvalidInput(f"the forebear server offers no call {method!r}")
        body = await read_json(request, MAX_CALL_BYTES)
        if not isinstance(body, dict):
            raise InvalidInput("malformed request: a call's body is {args, kwargs}")
        args, kwargs = body.get("args") or [], body.get("kwargs") or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise InvalidInput("malformed request: a call's body is {args, kwargs}")
        check_call(method, args, kwargs)

        def invoke(guarded: GuardedBackend) -> Any:
            try:
                return getattr(guarded, method)(*args, **kwargs)
            except TypeError as error:  # wrong arguments for the method
                raise InvalidInput(f"malformed call to {method}: {error}") from None

        result = await acting(request, invoke, principal)
        return Response(wire.dumps({"result": result}), media_type="application/json")

    async def present(request: Request) -> Response:
        """Which of these objects the user may build on; with ``sign`` (and the objects on
        S3), upload URLs for the others in the same answer (those of ``sign_from`` bytes or
        more: the client sends smaller ones in bundles)."""
        principal = await authenticated(request)
        body = await read_json(request, MAX_CALL_BYTES)
        sizes = checked_sizes(body)
        sign_from = body.get("sign_from", 0)
        if not isinstance(sign_from, int) or isinstance(sign_from, bool) or sign_from < 0:
            raise InvalidInput("malformed request: sign_from is a size in bytes")

        def usable(guarded: GuardedBackend) -> dict[str, Any]:
            guarded.need_some_writer()
            # before looking: bytes this user sent once, found now, are held off gc again
            # until the commit, as if sent again (see `db.access.held_by_uploads`)
            inner.renew_uploads(principal.id, sizes)
            there = inner.objects.present(sizes)
            found = sorted(guarded.held(there)) if there else []
            answer: dict[str, Any] = {"present": found}
            if body.get("sign") is True:
                absent = sorted(d for d in set(sizes) - set(found) if sizes[d] >= sign_from)
                signable(len(absent))
                staged = inner.objects.staged_uploads(absent, PRESIGNED_SECONDS)
                answer["uploads"] = {d: {"url": u, "id": i} for d, (u, i) in staged.items()}
            return answer

        return Response(wire.dumps(await acting(request, usable, principal)))

    async def put_object(request: Request) -> Response:
        principal = await authenticated(request)
        digest = checked_digest(request)
        GuardedBackend(inner, principal).need_some_writer()
        spool = cast(BinaryIO, tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY))  # noqa: SIM115
        try:
            received, hasher = 0, new_hasher()  # hashed as it arrives: the spool read once
            async for piece in request.stream():
                received += len(piece)
                if received > MAX_OBJECT_BYTES:
                    return JSONResponse({"error": "too large"}, status_code=413)
                spool.write(piece)
                hasher.update(piece)
            if hasher.hexdigest() != digest:
                raise IntegrityError(f"the bytes sent do not hash to {digest}; nothing was stored")
            spool.seek(0)

            def store_it() -> None:
                # the receipt first, which holds the bytes off gc from now on (a copy found
                # below stays there; one stored, too)
                inner.record_uploads(principal.id, [digest])
                # an intact copy stays: bytes that merely hash alike never replace it
                if inner.objects.actual_digest(digest) != digest:
                    # loose: visible at once, to the commit that will check it is there
                    inner.objects.put_stream(spool, digest, source="an upload", pack=False)

            await run_in_threadpool(store_it)
        finally:
            spool.close()
        return JSONResponse({"stored": digest}, status_code=201)

    async def staged_uploads(request: Request) -> Response:
        """Presigned URLs for uploads straight to the object store (staging keys)."""
        principal = await authenticated(request)
        GuardedBackend(inner, principal).need_some_writer()
        sizes = checked_sizes(await read_json(request, MAX_CALL_BYTES))
        signable(len(sizes))

        def sign() -> dict[str, Any]:
            staged = inner.objects.staged_uploads(sorted(sizes), PRESIGNED_SECONDS)
            return {d: {"url": url, "id": i} for d, (url, i) in staged.items()}

        return Response(wire.dumps({"uploads": await run_in_threadpool(sign)}))

    async def publish(request: Request) -> Response:
        """Check staged uploads against their digests and publish them."""
        principal = await authenticated(request)
        GuardedBackend(inner, principal).need_some_writer()
        body = await read_json(request, MAX_CALL_BYTES)
        staged = body.get("staged") if isinstance(body, dict) else None
        if not isinstance(staged, dict) or not all(
            isinstance(d, str)
            and DIGEST.fullmatch(d)
            and isinstance(i, str)
            and STAGING_ID.fullmatch(i)
            for d, i in staged.items()
        ):
            raise InvalidInput("malformed request: publish takes {staged: {digest: id}}")

        def check_all() -> None:
            inner.objects.publish_many(staged)
            give_back()
            inner.record_uploads(principal.id, staged)

        await run_in_threadpool(check_all)
        return Response(wire.dumps({"published": len(staged)}), media_type="application/json")

    async def store_checked(principal: Principal, data: Callable[[], bytes], rows: Any) -> Response:
        """Check and store a bundle's objects for ``principal`` (bytes read by ``data``),
        in its turn."""

        def store() -> int:
            body = data()
            slots = checked_index(rows, len(body))

            def receipts(digests: list[str]) -> None:
                inner.record_uploads(principal.id, digests)

            stored = store_bundle(inner.objects, body, slots, TRANSFER_WORKERS, receipts)
            del body
            give_back()
            return len(stored)

        async with BUNDLES_AT_ONCE:
            count = await run_in_threadpool(store)
        return Response(wire.dumps({"stored": count}), media_type="application/json")

    async def put_bundle(request: Request) -> Response:
        """A bundle sent through the server: its index as one JSON line, then its bytes."""
        principal = await authenticated(request)
        GuardedBackend(inner, principal).need_some_writer()
        body = await read_body(request, MAX_INDEX_BYTES + MAX_BUNDLE_BYTES)
        line, newline, data = body.partition(b"\n")
        try:
            rows = (
                await decoded(line, json.loads, MAX_BUNDLE_OBJECTS + 1, 3 * MAX_BUNDLE_OBJECTS)
                if newline
                else None
            )
        except (ValueError, RecursionError):
            rows = None
        if rows is None:
            raise InvalidInput("malformed bundle: its index as one JSON line, then its bytes")
        return await store_checked(principal, lambda: data, rows)

    async def publish_bundle(request: Request) -> Response:
        """A bundle sent to a staging key (objects on S3): read once, checked, stored."""
        principal = await authenticated(request)
        GuardedBackend(inner, principal).need_some_writer()
        body = await read_json(request, MAX_CALL_BYTES)
        staging_id = body.get("id") if isinstance(body, dict) else None
        key = body.get("key") if isinstance(body, dict) else None
        if not (
            isinstance(staging_id, str) and STAGING_ID.fullmatch(staging_id)
            and isinstance(key, str) and DIGEST.fullmatch(key)
        ):  # fmt: skip
            raise InvalidInput("malformed request: publish takes {id, key, objects}")

        def staged() -> bytes:
            return inner.objects.read_staged(staging_id, key, MAX_BUNDLE_BYTES)

        return await store_checked(principal, staged, body.get("objects"))

    async def file_header(principal: Principal, body: BodyReader) -> tuple[ChunkList, list[int]]:
        """A file upload's header line, checked: a chunk list cut as this store cuts files
        (larger chunks would make the server hash far more than it is sent), whose unsent
        chunks the user may build on."""
        line = await body.line(MAX_HEADER_BYTES)
        chunks, sent = await decoded(line, parse_header, MAX_HEADER_CONTAINERS, MAX_HEADER_VALUES)
        if chunks.chunking.max_size > inner.chunking.max_size:
            raise InvalidInput(
                f"malformed file upload: {chunks.digest} is cut into chunks of up to "
                f"{chunks.chunking.max_size} bytes; this store takes {inner.chunking.max_size} "
                "at most (cut it as GET /api/v1/info says)"
            )
        unsent = unsent_digests(chunks, sent)
        if unsent:
            held = await run_in_threadpool(GuardedBackend(inner, principal).held, unsent)
            if refused := unsent - held:
                raise InvalidInput(
                    f"{len(refused)} chunks of {chunks.digest} are not sent, not uploaded by "
                    f"you and in no version you may read (such as {min(refused)}); send them"
                )
        return chunks, sent

    def receive_checked(
        principal: Principal,
        chunks: ChunkList,
        sent: list[int],
        read: Callable[[int], bytes],
        recorder: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        """Store a chunked file (its header checked) whose sent chunks ``read`` returns,
        in order; run with one of `FILES_AT_ONCE` taken."""
        receive_file(
            inner.objects, chunks, sent, read, workers=FILE_WORKERS,
            on_stored=lambda digests: give_back(), recorder=recorder,
            on_checked=lambda digests: inner.record_uploads(principal.id, digests),
        )  # fmt: skip
        give_back()

    async def put_file(request: Request) -> Response:
        """A chunked file: its chunk list and which chunks follow as one JSON line, then
        those chunks' bytes in file order; each checked and stored as it arrives, the
        others read from the store in their turn, the chunk list written once the whole
        file hashes to its digest."""
        principal = await authenticated(request)
        GuardedBackend(inner, principal).need_some_writer()
        body = BodyReader(request)
        chunks, sent = await file_header(principal, body)

        def read(size: int) -> bytes:
            return from_thread.run(body.read, size)

        async with FILES_AT_ONCE:
            await run_in_threadpool(receive_checked, principal, chunks, sent, read)
        return JSONResponse({"stored": chunks.digest}, status_code=201)

    async def publish_file(request: Request) -> Response:
        """A chunked file whose sent chunks are staged (objects on S3): the same header
        line as ``POST /files``, then one line ``[staging id, key]`` per part as the client
        uploads it, then an empty line. Each part is read once, in order, as the stream
        would be: the bytes never pass through a client's connection to the server."""
        principal = await authenticated(request)
        GuardedBackend(inner, principal).need_some_writer()
        body = BodyReader(request)
        chunks, sent = await file_header(principal, body)
        names = LineWaiter(body, MAX_PART_LINE)

        def next_part(seconds: float | None) -> tuple[str, str] | Literal[False] | None:
            line = from_thread.run(names.next, seconds)
            return False if line is None else checked_part(line)

        def receive() -> None:
            staged = StagedParts(inner.objects, next_part)
            try:
                receive_checked(principal, chunks, sent, staged.read, staged.record_with)
            finally:
                staged.close()

        try:
            async with FILES_AT_ONCE:
                await run_in_threadpool(receive)
        finally:
            names.close()
        return JSONResponse({"stored": chunks.digest}, status_code=201)

    async def get_object(request: Request) -> Response:
        principal = await authenticated(request)
        digest = checked_digest(request)

        def may_read(guarded: GuardedBackend) -> tuple[str, str | None] | None:
            if digest not in guarded.held({digest}):
                raise PermissionDenied(
                    f"object {digest} is in no version user {guarded.principal.name!r} may read"
                )
            return inner.objects.presigned_url(digest, PRESIGNED_SECONDS)

        signed = await acting(request, may_read, principal)
        if signed is not None:
            url, byte_range = signed
            headers = {wire.RANGE_HEADER: byte_range} if byte_range is not None else None
            return RedirectResponse(url, status_code=307, headers=headers)
        stream = await run_in_threadpool(inner.objects.open_stored, digest)

        def pieces() -> Iterable[bytes]:
            with stream:
                while piece := stream.read(1 << 20):
                    yield piece

        return StreamingResponse(pieces(), media_type="application/octet-stream")

    async def read_objects(request: Request) -> Response:
        principal = await authenticated(request)
        digests = checked_read_request(await read_json(request, MAX_CALL_BYTES))

        def read(guarded: GuardedBackend) -> bytes:
            readable = guarded.held(digests)  # the others are not even looked for
            wanted = [d for d in digests if d in readable]
            return answer_reads(inner.objects, wanted, PRESIGNED_SECONDS)

        answer = await acting(request, read, principal)
        return Response(answer, media_type="application/octet-stream")

    async def commit(request: Request) -> Response:
        principal = await authenticated(request)
        body = await read_json(request, MAX_CALL_BYTES)
        if not isinstance(body, dict):
            raise InvalidInput("malformed request: a commit's body is a mapping")
        check_commit(body)
        version = await acting(request, lambda guarded: guarded.commit_upload(body), principal)
        return Response(wire.dumps({"result": version}), media_type="application/json")

    api = [
        Route("/healthz", health),
        Route("/readyz", ready),
        Route("/api/v1/info", info),
        Route("/api/v1/call/{method}", call, methods=["POST"]),
        Route("/api/v1/present", present, methods=["POST"]),
        Route("/api/v1/objects/read", read_objects, methods=["POST"]),
        Route("/api/v1/objects/{digest}", put_object, methods=["PUT"]),
        Route("/api/v1/objects/{digest}", get_object, methods=["GET"]),
        Route("/api/v1/uploads", staged_uploads, methods=["POST"]),
        Route("/api/v1/uploads/publish", publish, methods=["POST"]),
        Route("/api/v1/bundles", put_bundle, methods=["POST"]),
        Route("/api/v1/bundles/publish", publish_bundle, methods=["POST"]),
        Route("/api/v1/files", put_file, methods=["POST"]),
        Route("/api/v1/files/publish", publish_file, methods=["POST"]),
        Route("/api/v1/commit", commit, methods=["POST"]),
        *login.routes(),
        Mount("/", app=login.web_ui(store)),
    ]
    app = Starlette(
        routes=api,
        exception_handlers={ForebearError: forebear_error, Exception: unexpected_error},
    )
    return Guard(AccessLog(IdleBodyLimit(app, body_timeout)), set(allowed_hosts))


def signable(count: int) -> None:
    """Refuse to sign more upload URLs at once than a client asks for (each costs the
    server's S3 connection a signature, and a staging key to clean up)."""
    if count > MAX_SIGNED:
        raise InvalidInput(
            f"{count} upload URLs asked for at once; ask for {MAX_SIGNED} at most per request"
        )


def checked_sizes(body: Any) -> dict[str, int]:
    sizes = body.get("sizes") if isinstance(body, dict) else None
    if not isinstance(sizes, dict) or not all(
        isinstance(d, str) and DIGEST.fullmatch(d) and type(n) is int and 0 <= n < INTEGER_LIMIT
        for d, n in sizes.items()
    ):
        raise InvalidInput(
            "malformed request: expected {sizes: {digest: size}}, each size a whole number "
            "of bytes from 0 (below 2**63)"
        )
    return sizes


def checked_part(line: bytes) -> tuple[str, str] | None:
    """A staged part's name, ``[staging id, key]``; None for the empty line that ends them."""
    if not line.strip():
        return None
    try:
        part = json.loads(line)
    except (ValueError, RecursionError):
        part = None
    if not (
        isinstance(part, list) and len(part) == 2
        and all(isinstance(name, str) and STAGING_ID.fullmatch(name) for name in part)
    ):  # fmt: skip
        raise InvalidInput(
            "malformed file upload: after its first line, one [staging id, key] line per "
            "part (each 32 hex digits), then an empty line"
        )
    return part[0], part[1]


def checked_digest(request: Request) -> str:
    digest = str(request.path_params["digest"])
    if not DIGEST.fullmatch(digest):
        raise InvalidInput(f"{digest!r} is not an object digest (32 hex digits)")
    return digest


async def forebear_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ForebearError)
    status = (
        413 if isinstance(error, TooLarge)
        else 408 if isinstance(error, StalledBody)
        else wire.status_of(error)
    )  # fmt: skip
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return Response(wire.error_body(error), status, headers, media_type="application/json")


async def unexpected_error(request: Request, error: Exception) -> Response:
    LOG.exception("unexpected error on %s %s", request.method, request.url.path)
    body = {"error": "StoreError", "message": "the forebear server failed; see its log"}
    return JSONResponse(body, status_code=500)
