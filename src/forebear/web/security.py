"""What every response of the web UI goes through: only requests addressed to a host name
the server was started for are answered (a page on another site that points its own name
at 127.0.0.1, DNS rebinding, gets nothing), and every response tells the browser to run no
script and load nothing from elsewhere."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        b"script-src 'none'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def host_names(bound_to: str, extra: Iterable[str] = ()) -> set[str]:
    """The host names requests may carry: the address the server listens on, the loopback
    names when it listens there, this machine's names when it listens everywhere, and
    ``extra`` (``*`` lets every name in)."""
    names = {bound_to.strip("[]").lower()} | {e.strip().strip("[]").lower() for e in extra}
    if bound_to in LOOPBACK or bound_to.startswith("127."):
        names.update(LOOPBACK)
    if bound_to in WILDCARD:
        names.update(LOOPBACK)
        names.update({socket.gethostname().lower(), socket.getfqdn().lower()})
    names.discard("")
    return names


def host_of(header: str) -> str:
    """The host name of a Host header, without its port (``[::1]:8765`` is ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else ""
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


class Guard:
    """ASGI middleware: the Host check and the security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: set[str]) -> None:
        self.app = app
        self.allowed = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = host_of(headers.get(b"host", b"").decode("latin-1"))
        if "*" not in self.allowed and host not in self.allowed:
            body = (
                f"this forebear UI does not answer to the host name {host!r}; open it by "
                "the address it listens on, or start it with --allowed-host NAME\n"
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        *HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)
