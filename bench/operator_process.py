"""The operator as the benchmarks run it: `vector-operator run` for one namespace of the local
cluster, as a process of this interpreter, its log in a file; stopped with SIGTERM like a pod."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from localcluster.cluster import RunningCluster
from localcluster.ports import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


def start_operator(
    cluster: RunningCluster, namespace: str, milvus_uri: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """Starts the operator and waits (60 s at most) until it has authenticated."""
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{cluster.bin_dir}:{os.environ['PATH']}",
    }
    command = [
        sys.executable, "-m", "vector_operator.cli", "run",
        "--namespace", namespace,
        "--milvus-uri", milvus_uri,
        "--metrics-port", str(free_port()),
        *extra,
    ]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    deadline = time.monotonic() + 60
    while "Initial authentication has finished" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"the operator did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
