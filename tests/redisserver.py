"""A throw-away Redis server for the tests (Debian's ``redis-server``; ``make test`` installs
it when missing).

``RedisServer()`` picks a free loopback port and a fresh temporary directory; ``start()``
runs ``redis-server`` there (no persistence, no protected mode, 127.0.0.1 only) and returns
its URL ``redis://127.0.0.1:PORT/0``; ``stop()`` kills it (as a crash would: SIGKILL) and
``start()`` again brings it back, empty, on the same port (``start()`` on a running server
does nothing); ``close()`` stops it and deletes
the directory. ``redis_server`` in tests/conftest.py is the session-wide one, skipped with a
reason when the binary is missing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.pgcluster import free_port


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


class RedisServer:
    def __init__(self) -> None:
        self.binary = find_redis_server()
        self.root = Path(tempfile.mkdtemp(prefix="mapservice-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (make system-deps installs it)")
        if self.process is not None and self.process.poll() is None:
            return self.url
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                str(self.root / "log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited: {log[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self.url
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        """Kill it (SIGKILL: nothing saved, clients see their connections drop)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
