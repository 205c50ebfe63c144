"""The operator as the tests and the benchmarks run it on the host: `vector-operator run` for one
namespace of the local cluster, as a process of this interpreter, its log in a file and its
/metrics on a free port of 127.0.0.1; stopped with SIGTERM like a pod. (The chart's pod, from the
image, is what tests/e2e/test_in_cluster.py runs instead.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from localcluster.cluster import RunningCluster
from localcluster.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60


@dataclass
class OperatorProcess:
    """A running `vector-operator run`, its log and metrics port."""

    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            text: str = response.read().decode()
            return text

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def shut_down(self, cluster: RunningCluster, namespace: str) -> None:
        """Deletes the namespace's resources while the operator still runs (its finalizers
        release them), then stops it."""
        if self.process.poll() is None:
            for plural in ("migrationplans", "vectorcollections", "rollbackpolicies"):
                cluster.kubectl(
                    "delete", plural, "--all", "--namespace", namespace, "--timeout=90s", check=False
                )
        self.stop()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_operator(
    cluster: RunningCluster,
    namespace: str,
    milvus_uri: str,
    log: Path,
    *extra: str,
    kubeconfig: Path | None = None,
) -> OperatorProcess:
    """Starts the operator watching ``namespace`` (``extra``: more `run` options, later ones win)
    and waits until it has authenticated (START_TIMEOUT_S at most). ``kubeconfig``: the identity it
    runs as (default the admin's; ``cluster.operator_kubeconfig`` puts its requests in the audit
    log)."""
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig or cluster.kubeconfig),
        "PATH": f"{cluster.bin_dir}:{os.environ['PATH']}",
    }
    command = [
        sys.executable, "-m", "vector_operator.cli", "run",
        "--namespace", namespace,
        "--milvus-uri", milvus_uri,
        "--metrics-port", str(port),
        *extra,
    ]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    running = OperatorProcess(process, log, port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while "Initial authentication has finished" not in running.log_text():
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(f"the operator did not start:\n{running.log_text()[-3000:]}")
        time.sleep(0.2)
    return running
