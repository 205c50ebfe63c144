"""A real Milvus Lite server process (`milvus-lite server`) on 127.0.0.1, for the demo and the tests.

Milvus Lite serves one data directory per process, so everything (operator, workers, tests)
talks to this one server over gRPC, exactly as it would talk to a Milvus standalone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pymilvus import MilvusClient

from localcluster.ports import free_port, wait_for_port

STARTUP_TIMEOUT_S = 60.0


def connect(uri: str, timeout_s: float = 60.0) -> MilvusClient:
    """A pymilvus client for `uri`, retried while the server is briefly unreachable (a busy Milvus
    Lite, or a channel it just closed with GOAWAY) instead of failing on the first try."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return MilvusClient(uri=uri, timeout=10)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class MilvusLiteServer:
    """Starts and stops one `milvus-lite server` bound to 127.0.0.1 on a free (or given) port."""

    def __init__(self, data_dir: Path, port: int | None = None, log_path: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise RuntimeError("the Milvus Lite server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        executable = shutil.which("milvus-lite") or str(Path(sys.executable).with_name("milvus-lite"))
        if not Path(executable).exists():
            raise RuntimeError(
                "`milvus-lite` is not installed: run `make install` (it comes with milvus-lite)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        command = [
            executable,
            "server",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy()
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        if not wait_for_port("127.0.0.1", self.port, deadline, alive=lambda: self._alive()):
            self.stop()
            raise RuntimeError(
                f"Milvus Lite did not start listening on 127.0.0.1:{self.port}; see {self.log_path}"
            )
        self._wait_until_serving(deadline)

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _wait_until_serving(self, deadline: float) -> None:
        last_error: Exception | None = None
        while time.monotonic() < deadline and self._alive():
            try:
                client = MilvusClient(uri=self.uri, timeout=5)
                client.list_collections()
                client.close()
                return
            except Exception as error:  # the server is still starting: any error is retried
                last_error = error
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Milvus Lite at {self.uri} did not answer ({last_error}); see {self.log_path}")

    def client(self) -> MilvusClient:
        return connect(self.uri)

    def stop(self, timeout: float = 20.0) -> None:
        """Stops the server (SIGTERM, then SIGKILL after `timeout`). The data directory stays."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
