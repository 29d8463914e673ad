"""The HTTP client of a forebear server: one connection pool, the token on every request,
retries of what is safe to retry, and the server's errors raised as the same classes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx2 as httpx

from .. import wire
from ..errors import AuthenticationError, StoreError
from ..objects.bundles import index_rows
from ..processes import PerProcess

TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=600.0, pool=60.0)
ATTEMPTS = 4
RETRIED = (502, 503, 504)


class Unreachable(StoreError):
    """The server could not be reached, or the connection broke before it answered."""


class ServerClient:
    """Talks to one server as one token's user."""

    def __init__(self, url: str, token: str | None) -> None:
        if not token:
            raise AuthenticationError(
                f"no token for the forebear server {url}: set FOREBEAR_TOKEN or run "
                f"'forebear login {url}'"
            )
        self.url = url.rstrip("/")
        self._headers = {"authorization": f"Bearer {token}", "user-agent": "forebear"}
        self._http = PerProcess(self._connect, self._connect())

    def _connect(self) -> httpx.Client:
        # redirects are followed by hand: a presigned URL must not receive the token
        return httpx.Client(
            base_url=self.url, headers=self._headers, timeout=TIMEOUT, follow_redirects=False
        )

    @property
    def http(self) -> httpx.Client:
        """The connection pool; a new one in a process forked from the one that made it (a
        data loader's worker): two processes on one connection read each other's answers."""
        return self._http.get()

    def close(self) -> None:
        if (http := self._http.made_here()) is not None:  # a parent's are the parent's
            http.close()

    def request(
        self, method: str, path: str, *, retry: bool = True, bare: bool = False, **options: Any
    ) -> Any:
        """One request; connection errors and 502/503/504 are retried with backoff when
        ``retry`` (every call here is idempotent or checked by the server). ``bare``: to
        another host (a presigned URL), without the token."""
        for attempt in range(ATTEMPTS if retry else 1):
            try:
                if bare:
                    request = httpx.Request(method, path, **options)
                    response = self.http.send(request)
                else:
                    response = self.http.request(method, path, **options)
            except httpx.TransportError as error:
                if attempt + 1 >= (ATTEMPTS if retry else 1):
                    raise Unreachable(
                        f"cannot reach the forebear server {self.url}: {error}"
                    ) from None
            else:
                if response.status_code not in RETRIED or attempt + 1 >= ATTEMPTS:
                    return response
            time.sleep(0.2 * 2**attempt)
        raise StoreError(f"the forebear server {self.url} did not answer")  # pragma: no cover

    def checked(self, response: Any) -> Any:
        if response.status_code >= 400:
            raise wire.error_from(response.status_code, response.content)
        return response

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One backend method on the server."""
        body = wire.dumps({"args": list(args), "kwargs": kwargs})
        response = self.checked(self.request("POST", f"/api/v1/call/{method}", content=body))
        return wire.loads(response.content)["result"]

    def post(self, path: str, value: Any) -> Any:
        response = self.checked(self.request("POST", path, content=wire.dumps(value)))
        return wire.loads(response.content)

    def info(self) -> dict[str, Any]:
        return dict(self.checked(self.request("GET", "/api/v1/info")).json())

    def put_object(self, digest: str, body: bytes | Iterator[bytes]) -> None:
        retry = isinstance(body, bytes)  # a stream cannot be sent twice
        self.checked(self.request("PUT", f"/api/v1/objects/{digest}", content=body, retry=retry))

    def upload_urls(self, sizes: dict[str, int]) -> dict[str, dict[str, str]]:
        """Presigned URLs of staging keys for these objects: ``{digest: {url, id}}``."""
        return dict(self.post("/api/v1/uploads", {"sizes": sizes})["uploads"])

    def put_presigned(self, url: str, body: bytes | Any, size: int) -> None:
        """One upload straight to the object store (without the token)."""
        headers = {"content-length": str(size)}
        response = self.request("PUT", url, content=body, headers=headers,
                                retry=isinstance(body, bytes), bare=True)  # fmt: skip
        if response.status_code >= 300:
            raise StoreError(
                f"the object store refused an upload ({response.status_code}): "
                f"{response.text[:200]}"
            )

    def publish(self, staged: dict[str, str]) -> None:
        """Have the server check staged uploads (digest → staging id) and publish them."""
        self.post("/api/v1/uploads/publish", {"staged": staged})

    def put_bundle(self, index: bytes, data: bytes) -> None:
        """Many small objects in one request: the index line, then their bytes."""
        body = index + b"\n" + data
        self.checked(self.request("POST", "/api/v1/bundles", content=body))

    def put_file(self, header: bytes, pieces: Iterator[bytes]) -> None:
        """A chunked file in one request: the header line, then the bytes of the chunks it
        says are sent (a stream: never sent twice by this call)."""

        def body() -> Iterator[bytes]:
            yield header + b"\n"
            yield from pieces

        self.checked(self.request("POST", "/api/v1/files", content=body(), retry=False))

    def publish_file(self, header: bytes, parts: Iterator[tuple[str, str]]) -> None:
        """Have the server check and store a chunked file whose chunks are staged: the
        header line, then each part's staging id and key as it is uploaded (a stream the
        server reads as it arrives), then an empty line. Never sent twice by this call:
        the server removes each part as it reads it."""

        def body() -> Iterator[bytes]:
            yield header + b"\n"
            for part in parts:
                yield json.dumps(list(part)).encode() + b"\n"
            yield b"\n"

        self.checked(self.request("POST", "/api/v1/files/publish", content=body(), retry=False))

    def publish_bundle(
        self, staging_id: str, key: str, slots: Mapping[str, tuple[int, int]]
    ) -> None:
        """Have the server check and store a bundle sent to its staging key."""
        rows = index_rows(slots)
        self.post("/api/v1/bundles/publish", {"id": staging_id, "key": key, "objects": rows})

    def all_present(self, slots: Mapping[str, tuple[int, int]]) -> bool:
        """Whether the server holds every one of these objects for this user."""
        sizes = {d: n for d, (_, n) in slots.items()}
        return set(self.post("/api/v1/present", {"sizes": sizes})["present"]) == set(sizes)

    def object_response(self, digest: str) -> Any:
        """The response carrying an object's bytes (a stream: close it), after following
        the server to a presigned URL without the token."""
        request = self.http.build_request("GET", f"/api/v1/objects/{digest}")
        response = self.http.send(request, stream=True)
        if response.status_code in (301, 302, 303, 307, 308):
            target = response.headers.get("location", "")
            byte_range = response.headers.get(wire.RANGE_HEADER)  # a packed object's
            response.close()
            headers = {"Range": byte_range} if byte_range else None
            with_no_token = httpx.Request("GET", target, headers=headers)
            response = self.http.send(with_no_token, stream=True)
        if response.status_code >= 400:
            content = response.read()
            response.close()
            raise wire.error_from(response.status_code, content)
        return response
