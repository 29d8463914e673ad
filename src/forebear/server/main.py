"""Running a forebear server: uvicorn workers over one store, a graceful shutdown, and the
access log on stderr (one JSON line per request).

Workers are separate processes: each builds its application from the environment
(`config.export_server_settings`), which `serve` sets, so
they share nothing but the catalog and the object location, as replicas on other machines
do.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from starlette.types import ASGIApp

from .. import settings as config
from ..store import Store
from .app import create_app
from .bodies import BODY_TIMEOUT_SECONDS
from .memory import keep_memory_flat

GRACE_SECONDS = 30  # requests in flight may finish this long after SIGTERM


def app_from_environment() -> ASGIApp:
    """The application of one worker (uvicorn's factory)."""
    keep_memory_flat()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("forebear.server.access")
    if not access.handlers:
        access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    return create_app(
        Store(create=True),
        config.server_hosts(),
        config.server_body_timeout(BODY_TIMEOUT_SECONDS),
    )


def serve(
    db_url: str | None,
    objects_url: str | None,
    *,
    host: str,
    port: int,
    workers: int,
    allowed_hosts: Sequence[str],
    body_timeout: float = BODY_TIMEOUT_SECONDS,
) -> None:
    """Serve the store until SIGINT/SIGTERM (then finish what is in flight)."""
    import uvicorn

    store = Store(db_url, objects_url, create=True)  # a clear error now, before any worker
    config.export_server_settings(store.db_url, store.objects_url, allowed_hosts, body_timeout)
    store.close()
    uvicorn.run(
        "forebear.server.main:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACE_SECONDS,
        proxy_headers=True,
    )
