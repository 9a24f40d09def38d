"""An ASGI app served on a free 127.0.0.1 port in a background thread, for tests that need a real HTTP peer."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedApp:
    """``with ServedApp(app) as served:`` the app answers at ``http://127.0.0.1:{served.port}`` until the block ends."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise TimeoutError(f"{type(self).__name__} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
