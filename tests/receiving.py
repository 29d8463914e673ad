"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 (see `Receiver`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST and answers ``status``
    (with ``answer`` as its body). With ``hold`` set, the first POST is answered only when
    ``hold`` is set free: a send that takes its time."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.answer = b""
        self.hold: threading.Event | None = None
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:  # recorded as it arrives: answers may race each other
                    receiver.received.append((dict(self.headers), body))
                    first = len(receiver.received) == 1
                    receiver.arrived.notify_all()
                if first and receiver.hold is not None:
                    receiver.hold.wait(120)
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                try:
                    self.wfile.write(receiver.answer)
                except OSError:  # the sender read what it wanted and hung up
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout=60)
        return self.events()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
