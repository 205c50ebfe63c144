"""`make bench-operator`: how fast the operator brings many VectorCollections to Ready, and what it
costs in memory.

Uses the local cluster that `make cluster-up` started (or brings one up, and down again after),
its own Milvus Lite server on 127.0.0.1, and `vector-operator run` for a fresh namespace with the
default check and probe intervals (30 s, 60 s), as an SRE would run it. Then:

1. creates ``--count`` (default 50) VectorCollections at once (8 concurrent API requests);
2. watches them: each one's apply -> Ready latency is from the moment its create request was sent
   to the moment the watch delivers its Ready=True condition (sub-second; the API server's own
   timestamps have whole seconds only, so they are printed as a cross-check);
3. prints p50 / p95 / max, the time until all are Ready, and the operator's peak RSS (VmHWM);
4. deletes them (deletionPolicy Delete: every alias and collection is dropped) and times that;
5. stops the operator, deletes the namespace, stops Milvus Lite.

Nothing here asserts a timing; it fails only when something does not become Ready or is not
cleaned up within ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_cluster import add_state_dir_argument, bench_cluster
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from pymilvus import MilvusClient

from localcluster.cluster import RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.operator_process import OperatorProcess, start_operator

REPO_ROOT = Path(__file__).resolve().parent.parent
GROUP, VERSION, PLURAL = "vectors.aios.dev", "v1alpha1", "vectorcollections"


def manifest(name: str, alias: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VectorCollection",
        "metadata": {"name": name},
        "spec": {
            "collectionName": alias,
            "dimension": 384,
            "metricType": "COSINE",
            "index": {"type": "HNSW", "params": {"M": 16, "efConstruction": 128}},
            "searchParams": {"ef": 64},
            "fields": [{"name": "source_table", "type": "VARCHAR", "maxLength": 128}],
            "embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2", "normalize": True},
            "deletionPolicy": "Delete",
        },
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, linear between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class ReadyWatch:
    """Records, from a watch on the namespace, when each object first shows Ready=True, and when
    each one is deleted."""

    def __init__(self, custom: client.CustomObjectsApi, namespace: str) -> None:
        self.custom = custom
        self.namespace = namespace
        self.ready_at: dict[str, float] = {}
        self.server_latency_s: dict[str, float] = {}
        self.deleted_at: dict[str, float] = {}
        self.changed = threading.Condition()
        self._watch = watch.Watch()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._watch.stop()

    def _run(self) -> None:
        resource_version = None
        while not self._stopped.is_set():
            try:
                stream = self._watch.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=resource_version,
                    timeout_seconds=300,
                )
                for event in stream:
                    body = event["object"]
                    resource_version = body["metadata"]["resourceVersion"]
                    self._record(event["type"], body)
            except ApiException as error:
                if error.status == 410:  # expired: list again (events already recorded are kept)
                    resource_version = None
                time.sleep(0.2)
            except Exception:  # a dropped connection: resume from the last version seen
                time.sleep(0.2)

    def _record(self, kind: str, body: dict[str, Any]) -> None:
        now = time.monotonic()
        name = body["metadata"]["name"]
        with self.changed:
            if kind == "DELETED":
                self.deleted_at.setdefault(name, now)
            elif name not in self.ready_at:
                for condition in (body.get("status") or {}).get("conditions") or []:
                    if condition["type"] == "Ready" and condition["status"] == "True":
                        self.ready_at[name] = now
                        created = parse_time(body["metadata"]["creationTimestamp"])
                        turned = parse_time(condition["lastTransitionTime"])
                        self.server_latency_s[name] = (turned - created).total_seconds()
            self.changed.notify_all()

    def wait(self, done: Any, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(done, timeout)


def run(cluster: RunningCluster, count: int, timeout: float, scratch: Path, log: Path) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{PLURAL}.{GROUP}")
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    custom = client.CustomObjectsApi(api)
    namespace = f"bench-vcol-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    milvus = MilvusLiteServer(scratch / "milvus")
    milvus.start()
    operator: OperatorProcess | None = None
    watcher = ReadyWatch(custom, namespace)
    prefix = f"bench_{uuid.uuid4().hex[:6]}"
    names = [f"bench-{i:03d}" for i in range(count)]
    try:
        operator = start_operator(cluster, namespace, milvus.uri, log)
        idle_kib = memory_kib(operator.process.pid, "VmRSS")
        watcher.start()
        time.sleep(1)  # let the watch establish before the first create

        sent_at: dict[str, float] = {}

        def create(name: str) -> None:
            sent_at[name] = time.monotonic()
            body = manifest(name, f"{prefix}_{name.replace('-', '_')}")
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(create, names))
        created_s = time.monotonic() - started
        if not watcher.wait(lambda: len(watcher.ready_at) == count, timeout):
            late = sorted(set(names) - set(watcher.ready_at))
            raise RuntimeError(
                f"{len(late)} of {count} not Ready after {timeout:.0f}s: {late[:5]}; see {log}"
            )
        all_ready_s = max(watcher.ready_at.values()) - started
        latencies = [watcher.ready_at[name] - sent_at[name] for name in names]
        server = list(watcher.server_latency_s.values())
        peak_ready_kib = memory_kib(operator.process.pid, "VmHWM")
        ready_rss_kib = memory_kib(operator.process.pid, "VmRSS")

        started = time.monotonic()
        for name in names:
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        if not watcher.wait(lambda: len(watcher.deleted_at) == count, timeout):
            raise RuntimeError(f"only {len(watcher.deleted_at)} of {count} deleted after {timeout:.0f}s")
        all_deleted_s = max(watcher.deleted_at.values()) - started
        peak_kib = memory_kib(operator.process.pid, "VmHWM")
        remaining = [n for n in MilvusClient(uri=milvus.uri).list_collections() if n.startswith(prefix)]
        errors = log.read_text(errors="replace").count("[ERROR")

        print(f"VectorCollections: {count}, created in {created_s:.2f}s (8 concurrent requests)")
        print("apply -> Ready (create request sent -> Ready=True seen by a watch):")
        print(
            f"  p50 {percentile(latencies, 50):.2f}s   p95 {percentile(latencies, 95):.2f}s"
            f"   max {max(latencies):.2f}s   mean {statistics.fmean(latencies):.2f}s"
        )
        print(
            f"  server timestamps (whole seconds: creationTimestamp -> Ready lastTransitionTime):"
            f" p50 {percentile(server, 50):.0f}s  p95 {percentile(server, 95):.0f}s  max {max(server):.0f}s"
        )
        print(f"all {count} Ready {all_ready_s:.2f}s after the first create request")
        print(
            f"all {count} deleted (alias and collections dropped) in {all_deleted_s:.2f}s;"
            f" left in Milvus: {len(remaining)}"
        )
        print(
            f"operator memory: RSS idle {idle_kib / 1024:.0f} MiB,"
            f" with {count} Ready {ready_rss_kib / 1024:.0f} MiB;"
            f" peak (VmHWM) {peak_ready_kib / 1024:.0f} MiB until Ready, {peak_kib / 1024:.0f} MiB overall"
        )
        print(f"operator log: {errors} ERROR lines")
        if remaining:
            raise RuntimeError(f"collections left in Milvus after deletion: {remaining[:5]}")
    finally:
        watcher.stop()
        if operator is not None:
            if operator.process.poll() is None:
                cluster.kubectl("delete", PLURAL, "--all", "-n", namespace, "--timeout=120s", check=False)
            operator.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        milvus.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count", type=int, default=50, help="VectorCollections applied at once (default 50)"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for Ready / deletion")
    parser.add_argument(
        "--operator-log",
        type=Path,
        help="write the operator's log here (default: a temporary file, removed afterwards)",
    )
    add_state_dir_argument(parser)
    args = parser.parse_args(argv)
    scratch_dir = tempfile.TemporaryDirectory(prefix="vo-bench-operator-")
    with bench_cluster(args.state_dir) as cluster, scratch_dir as scratch:
        log = args.operator_log or Path(scratch) / "operator.log"
        log.unlink(missing_ok=True)
        run(cluster, args.count, args.timeout, Path(scratch), log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
