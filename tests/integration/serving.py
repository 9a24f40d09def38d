"""Start `rf-mcp serve` on a free loopback port for transport tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.asgi import free_port
from tests.common import make_config


class ServedMCP:
    def __init__(self, tmp: Path, transport: str = "streamable-http", *extra: str, env: dict | None = None) -> None:
        self.port = free_port()
        cfg = make_config(tmp, tmp / "data")
        self.err = tmp / f"{transport}-{self.port}.err"
        self._err_file = self.err.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rf_mcp", "--config", str(cfg), "serve", "--transport", transport,
             "--port", str(self.port), *extra],
            stdout=subprocess.DEVNULL, stderr=self._err_file, env={**os.environ, **(env or {})})
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    self._err_file.close()
                    raise AssertionError(self.err.read_text()) from None
                time.sleep(0.2)
        raise TimeoutError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._err_file.close()
