"""Shared pieces of the end-to-end tests: the quickstart's manifests pointed at a test's own
source, waiting on a plan's phase, reading Milvus, and a query loop on the alias."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pymilvus import MilvusClient
from tests import polling
from tests.conftest import REPO_ROOT, OperatorProcess, start_operator

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.host_worker import host_worker_args
from localcluster.milvus_lite import connect

T = TypeVar("T")
QUICKSTART = REPO_ROOT / "examples" / "quickstart"
ROWS = 200


def eventually(what: str, check: Callable[[], T | None], timeout: float = 300) -> T:
    """Migrations take minutes on a 2-core machine: a longer default bound, checked every second."""
    return polling.eventually(what, check, timeout, interval=1)


FOUR_JOBS = {"recordsPerJob": 50, "maxConcurrentJobs": 2}
"""The batching most tests fill the quickstart's 200 rows with: several batches to count and guard
(the shipped quickstart leaves it auto: one Job)."""


def quickstart(
    source: Path, alias: str, *, batching: dict[str, Any] | None = FOUR_JOBS, **plan_spec: Any
) -> list[dict[str, Any]]:
    """The quickstart's Secret, VectorCollection and MigrationPlan, pointed at `source`; the plan's
    batching is ``batching`` (None: as shipped)."""
    if batching is not None:
        plan_spec = {"batching": batching, **plan_spec}
    documents = [d for d in yaml.safe_load_all((QUICKSTART / "quickstart.yaml").read_text()) if d]
    chosen = []
    for document in documents:
        if document["kind"] == "Secret":
            document["stringData"]["url"] = f"sqlite:///{source}"
        elif document["kind"] == "VectorCollection":
            document["spec"]["collectionName"] = alias
        elif document["kind"] == "MigrationPlan":
            document["spec"].update(plan_spec)
        else:
            continue
        chosen.append(document)
    return chosen


def apply(kubectl: Kubectl, documents: list[dict[str, Any]]) -> None:
    kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in documents))


def plan_status(kubectl: Kubectl, name: str = "articles-backfill") -> dict[str, Any]:
    got: dict[str, Any] = json.loads(kubectl("get", "migrationplan", name, "-o", "json").stdout)
    return got.get("status") or {}


def phase_is(
    kubectl: Kubectl, *phases: str, plan: str = "articles-backfill"
) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        status = plan_status(kubectl, plan)
        if status.get("phase") in ("Failed", "RolledBack") and status.get("phase") not in phases:
            raise AssertionError(f"the plan ended {status.get('phase')}: {json.dumps(status)[:3000]}")
        return status if status.get("phase") in phases else None

    return check


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def event_reasons(kubectl: Kubectl, name: str, type_: str | None = None) -> list[str]:
    """The reasons of the Events about ``name`` (only those of ``type_``, e.g. Warning, when given)."""
    selector = f"involvedObject.name={name}" + (f",type={type_}" if type_ else "")
    listed = json.loads(kubectl("get", "events", "--field-selector", selector, "-o", "json").stdout)
    return [e["reason"] for e in listed["items"]]


def ids_in(milvus: MilvusClient, collection: str) -> list[int]:
    ids: list[int] = []
    iterator = milvus.query_iterator(collection, batch_size=1000, filter="", output_fields=["id"])
    while batch := iterator.next():
        ids += [row["id"] for row in batch]
    iterator.close()
    return ids


def count(milvus: MilvusClient, collection: str) -> int:
    return int(milvus.query(collection, filter="", output_fields=["count(*)"])[0]["count(*)"])


class QueryLoop:
    """Searches the alias in a loop, as an application would, and counts failed queries."""

    def __init__(
        self, uri: str, alias: str, dimension: int = 384, params: dict[str, int] | None = None
    ) -> None:
        self.client = connect(uri)
        self.alias = alias
        self.dimension = dimension
        self.params = {"ef": 64} if params is None else params
        self.queries = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        vector = [1.0 / self.dimension**0.5] * self.dimension
        while not self._stop.is_set():
            try:
                self.client.search(self.alias, data=[vector], limit=3, search_params={"params": self.params})
                self.queries += 1
            except Exception as error:
                self.failures.append(repr(error)[:300])
            self._stop.wait(0.05)

    def __enter__(self) -> QueryLoop:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()


def run_operator(cluster: RunningCluster, namespace: str, uri: str, log: Path) -> OperatorProcess:
    return start_operator(cluster, namespace, uri, log, "--plan-interval", "1", *host_worker_args())


def vector(cluster: RunningCluster, namespace: str, *args: str) -> str:
    """`kubectl vector ARGS -n NAMESPACE` through the real kubectl, which finds the plugin on PATH."""
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{Path(sys.executable).parent}:{cluster.bin_dir}:{os.environ['PATH']}",
    }
    command = [str(cluster.bin_dir / "kubectl"), "vector", *args, "-n", namespace]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout
