"""A real Milvus standalone (2.3, from the `milvus` PyPI package: `pip install '.[compat]'`), for
the compatibility tier: the operator against the server production runs, not only Milvus Lite.

The package ships the `milvus` binary (compressed) and a configuration template; this module
unpacks both into the data directory and starts `milvus run standalone` itself, with embedded
etcd, local storage and RocksMQ under the data directory.

Milvus 2.3 binds its gRPC and HTTP ports on every interface (`[::]`) whatever its configuration
says (its `*.ip` settings only choose the address it advertises). So the server runs inside a
private network namespace (:mod:`localcluster.loopback_namespace`) and only its client port and
its health port are forwarded from the host's 127.0.0.1; nothing else of it is reachable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

from localcluster.ports import free_port, wait_for_port

STARTUP_TIMEOUT_S = 180.0
INNER_CLIENT_PORT = 19530
INNER_HEALTH_PORT = 9091
_COMPONENTS = (
    "rootCoord",
    "proxy",
    "queryCoord",
    "queryNode",
    "indexCoord",
    "indexNode",
    "dataCoord",
    "dataNode",
)
DEVENV_DIR = Path(__file__).resolve().parent.parent


class MilvusStandaloneUnavailable(RuntimeError):
    """The `milvus` package is missing, or this machine cannot isolate the server's network."""


class MilvusStandaloneServer:
    """Starts and stops one Milvus 2.3 standalone reachable on 127.0.0.1 only (see the module)."""

    def __init__(self, data_dir: Path, port: int | None = None, log_path: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.health_port: int | None = None
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}.log"
        self.startup_s: float | None = None  # how long the last start took, until it answered
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise RuntimeError("the Milvus standalone server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The forwarding process's pid; the `milvus` process is its child, in its process group."""
        return self._process.pid if self._process else None

    @property
    def version(self) -> str:
        return str(_milvus_package().__version__)

    def _prepare(self) -> Path:
        """Writes the configuration and unpacks the binary; returns the binary's path."""
        package = _milvus_package()
        config = package.MilvusServerConfig(data_dir=str(self.data_dir))
        # The template's defaults name every port; they are private to the server's namespace, so
        # the defaults never collide with anything on the host. Resolving them (the package's
        # resolve()) would probe the host's ports instead.
        for component in _COMPONENTS:
            config.set(f"{component}.ip", "127.0.0.1")
        config.resolve_storage()
        unresolved = [key for key, (_, value) in config.configurable_items.items() if value is None]
        if unresolved:
            raise MilvusStandaloneUnavailable(f"milvus {package.__version__}: unset settings {unresolved}")
        config.write_config()
        package._initialize_data_files(str(self.data_dir))
        return self.data_dir / "bin" / "milvus"

    def start(self) -> None:
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        executable = self._prepare()
        self.port = self.port or free_port()
        self.health_port = free_port()
        env = {
            **os.environ,
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(INNER_HEALTH_PORT),
            "MILVUS_RUN_DIR": str(self.data_dir / "run"),
            "LD_LIBRARY_PATH": ":".join(
                filter(None, [str(executable.parent), os.environ.get("LD_LIBRARY_PATH")])
            ),
            "PYTHONPATH": ":".join(filter(None, [str(DEVENV_DIR), os.environ.get("PYTHONPATH")])),
        }
        command = [
            sys.executable, "-m", "localcluster.loopback_namespace",
            "--forward", f"{self.port}:{INNER_CLIENT_PORT}",
            "--forward", f"{self.health_port}:{INNER_HEALTH_PORT}",
            "--", str(executable), "run", "standalone",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,  # milvus reads configs/milvus.yaml from its working directory
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        if not wait_for_port("127.0.0.1", self.port, deadline, alive=self._alive):
            self._fail("did not start listening")
        self._wait_until_serving(deadline)
        self.startup_s = time.monotonic() - started

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _fail(self, what: str) -> None:
        exited = self._process.poll() if self._process else None
        self.stop()
        if exited == 125:  # localcluster.loopback_namespace.EXIT_NAMESPACE_UNAVAILABLE
            raise MilvusStandaloneUnavailable(
                f"cannot isolate Milvus standalone on loopback (it binds every interface): {self._log_tail()}"
            )
        raise RuntimeError(f"Milvus standalone at {self.uri} {what}; see {self.log_path}: {self._log_tail()}")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-1500:]
        return ""

    def _wait_until_serving(self, deadline: float) -> None:
        from pymilvus import MilvusClient

        health = f"http://127.0.0.1:{self.health_port}/healthz"
        while time.monotonic() < deadline and self._alive():
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if b"OK" in response.read():
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        last_error: Exception | None = None
        while time.monotonic() < deadline and self._alive():
            try:
                client = MilvusClient(uri=self.uri, timeout=5)
                client.list_collections()
                client.close()
                return
            except Exception as error:  # still starting: any error is retried until the deadline
                last_error = error
                time.sleep(0.5)
        self._fail(f"did not answer ({last_error})")

    def stop(self, timeout: float = 30.0) -> None:
        """Stops the server and its forwarder (SIGTERM to their process group, SIGKILL after
        `timeout`). The data directory stays."""
        process, self._process = self._process, None
        if process is None:
            return
        group = process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(group):
            process.poll()  # reap the forwarder as soon as it exits
            time.sleep(0.2)
        if _group_alive(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        process.wait()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _milvus_package() -> ModuleType:
    try:
        import milvus
    except ImportError:
        raise MilvusStandaloneUnavailable(
            "the `milvus` package (Milvus standalone 2.3) is not installed: pip install '.[compat]'"
        ) from None
    package: ModuleType = milvus
    return package
