"""The access log of a forebear server: one JSON line per request on the logger
``forebear.server.access``."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

LOG = logging.getLogger("forebear.server.access")


class AccessLog:
    """One JSON line per request: method, path, status, user, milliseconds; never a
    header, a query string or a body (tokens and cookies stay out of logs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = [0]

        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            state = scope.get("state") or {}
            LOG.info(
                json.dumps(
                    {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status[0],
                        "user": state.get("user"),
                        "ms": round((time.monotonic() - started) * 1000, 1),
                    }
                )
            )
