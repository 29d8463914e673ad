"""A real `forebear server` process for tests: started on a free port over a given store,
with an admin and as many users as a test asks for; stopped (and its log kept for the
failure report) when the test ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

import forebear

STARTUP_SECONDS = 120  # a loaded machine can be slow to import and bind; we poll, not sleep


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ForebearServer:
    """One server process over ``db_url`` + ``objects_url``; ``admin_token`` is a server
    admin's. `user` adds users with roles and returns their tokens."""

    def __init__(
        self,
        db_url: str,
        objects_url: str,
        log: Path,
        *,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
        replica_of: ForebearServer | None = None,
    ) -> None:
        self.db_url, self.objects_url = db_url, objects_url
        self.direct = forebear.Store(db_url, objects_url)
        if replica_of is None:
            self.direct.add_user("admin", admin=True)
            self.admin_token = self.direct.create_token("admin", "tests")
        else:  # another process serving the same store: the same users
            self.admin_token = replica_of.admin_token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [
            sys.executable, "-m", "forebear", "server", "--db", db_url, "--objects", objects_url,
            "--port", str(self.port), *extra,
        ]  # fmt: skip
        clean = {k: v for k, v in os.environ.items() if not k.startswith("FOREBEAR_")}
        with log.open("wb") as sink:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env={**clean, **(env or {})},
                start_new_session=True,
            )
        self.wait_ready()

    @classmethod
    def over_folder(cls, root: Path, **options: Any) -> ForebearServer:
        """A server over SQLite + a folder: the store in ``root/store`` (made here), its
        log in ``root/server.log``; ``options`` as for the constructor."""
        (root / "store").mkdir(exist_ok=True)  # a test may have begun it (`format_2`)
        return cls(
            f"sqlite:///{root / 'store' / 'meta.db'}", str(root / "store"),
            root / "server.log", **options,
        )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not get ready: {self.log.read_text()[-2000:]}")

    def user(self, name: str, roles: dict[str, str] | None = None, *, admin: bool = False) -> str:
        """A new user with these roles by project; their token."""
        self.direct.add_user(name, admin=admin)
        for project, role in (roles or {}).items():
            self.direct.grant(name, project, role)
        return self.direct.create_token(name, "tests")

    def store(self, token: str | None = None) -> forebear.Store:
        return forebear.Store(self.url, token=token or self.admin_token)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.direct.close()
