"""The faults themselves, done to the real processes: the operator and the node agent SIGKILLed,
a worker pod's process SIGKILLed and the pod deleted, Milvus Lite stopped and started on the same
data, the API server restarted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.schedule import FaultDraw, FaultKind
from localcluster.cluster import LocalCluster, RunningCluster
from localcluster.host_worker import host_worker_args
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.operator_process import OperatorProcess, start_operator

REQUEST_TIMEOUT_S = 10
WORKER_WAIT_S = 30.0
"""How long a worker-pod fault waits for a running worker before it is given up (not injected)."""


@dataclass
class Injected:
    kind: FaultKind
    started: float
    ended: float
    detail: str
    recovered_s: float | None = None
    """From the fault's end (the component back) until the plan moved again."""


@dataclass
class Stage:
    """What one run's faults act on."""

    local: LocalCluster
    cluster: RunningCluster
    core: client.CoreV1Api
    milvus: MilvusLiteServer
    namespace: str
    operator_log: Path
    operator: OperatorProcess | None = None
    milvus_down: list[tuple[float, float]] = field(default_factory=list)

    def start_operator(self) -> None:
        quick = ("--plan-interval", "1", "--check-interval", "2", "--probe-interval", "2")
        self.operator = start_operator(
            self.cluster,
            self.namespace,
            self.milvus.uri,
            self.operator_log,
            *quick,
            *host_worker_args(),
        )


def inject(stage: Stage, draw: FaultDraw) -> Injected | None:
    """Does the fault and returns once the faulty component runs again (None: nothing to do it to,
    e.g. no worker pod was running)."""
    started = time.monotonic()
    detail = _DO[draw.kind](stage, draw)
    if detail is None:
        return None
    return Injected(draw.kind, started, time.monotonic(), detail)


def _operator(stage: Stage, _: FaultDraw) -> str:
    assert stage.operator is not None
    pid = stage.operator.process.pid
    stage.operator.stop(signal.SIGKILL)
    stage.start_operator()
    return f"SIGKILLed pid {pid}, restarted"


def _worker_pod(stage: Stage, _: FaultDraw) -> str | None:
    deadline = time.monotonic() + WORKER_WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiException, OSError):
            listed = stage.core.list_namespaced_pod(
                stage.namespace,
                label_selector="job-name",
                _request_timeout=REQUEST_TIMEOUT_S,
                _preload_content=False,
            )
            for pod in json.loads(cast(Any, listed).data)["items"]:
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                if not (statuses and "running" in (statuses[0].get("state") or {})):
                    continue
                name = pod["metadata"]["name"]
                pid = _pod_process(stage.cluster.node_dir, name)
                if pid is None:
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ApiException):
                    stage.core.delete_namespaced_pod(
                        name, stage.namespace, _request_timeout=REQUEST_TIMEOUT_S
                    )
                return f"SIGKILLed {name}'s process {pid} and deleted the pod"
        time.sleep(0.5)
    return None


def _pod_process(node_dir: Path, pod: str) -> int | None:
    """The process (its own group leader) the local node runs for ``pod``: a host process whose
    environment names the pod (HOSTNAME) and whose output goes to this node's pods directory."""
    wanted = f"HOSTNAME={pod}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if (
                wanted in environ
                and os.getpgid(int(entry.name)) == int(entry.name)
                and os.readlink(entry / "fd" / "1").startswith(f"{node_dir}/")
            ):
                return int(entry.name)
        except OSError:
            continue
    return None


def _milvus(stage: Stage, draw: FaultDraw) -> str:
    stopped = time.monotonic()
    stage.milvus.stop()
    time.sleep(draw.outage_s)
    stage.milvus.start()
    stage.milvus_down.append((stopped, time.monotonic()))
    return f"Milvus Lite stopped for {draw.outage_s:.1f}s, restarted on the same data"


def _api_server(stage: Stage, _: FaultDraw) -> str:
    stage.local.restart("kube-apiserver")
    return "kube-apiserver restarted (SIGTERM, started again)"


def _node_agent(stage: Stage, _: FaultDraw) -> str:
    stage.local.restart("node-agent", signal.SIGKILL)
    return "node agent SIGKILLed, restarted"


_DO = {
    FaultKind.OPERATOR: _operator,
    FaultKind.WORKER_POD: _worker_pod,
    FaultKind.MILVUS: _milvus,
    FaultKind.API_SERVER: _api_server,
    FaultKind.NODE_AGENT: _node_agent,
}
