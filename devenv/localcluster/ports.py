"""Loopback ports: pick a free one, wait for one to accept connections."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, deadline: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """True once `host:port` accepts a connection; False at the monotonic `deadline` or when
    `alive()` says the process that should listen has exited."""
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False
