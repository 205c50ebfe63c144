"""`make bench-operator`: how fast the operator brings many VectorCollections to Ready, and what it
costs in memory.

Uses the local cluster that `make cluster-up` started (or brings one up, and down again after),
its own Milvus Lite server on 127.0.0.1, and `vector-operator run` for a fresh namespace with the
default check and probe intervals (30 s, 60 s), as an SRE would run it. Then:

1. creates ``--count`` (default 50) VectorCollections at once (8 concurrent API requests);
2. watches them: each one's apply -> Ready latency is from the moment its create request was sent
   to the moment the watch delivers its Ready=True condition (sub-second; the API server's own
   timestamps have whole seconds only, so they are printed as a cross-check);
3. prints p50 / p95 / max, the time until all are Ready, the operator's peak RSS (VmHWM), the CPU
   the operator and Milvus Lite used until all were Ready, and the seconds the operator spent in
   Milvus calls (its own histogram, by operation) against that wall time;
4. deletes them (deletionPolicy Delete: every alias and collection is dropped) and times that;
5. stops the operator, deletes the namespace, stops Milvus Lite; prints the operator log's ERROR
   lines by kind.

Before it starts the operator, it waits until every custom resource of crds/ can be listed: an
apply that changed a CRD reinitialises its storage for a moment (429 "storage is (re)initializing"),
which a real installation, whose CRDs exist long before, never shows its operator.

`run()` returns the figures as (figure, value) pairs, for another bench to tabulate.

Nothing here asserts a timing; it fails only when something does not become Ready or is not
cleaned up within ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_cluster import add_state_dir_argument, bench_cluster
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from process_figures import cpu_seconds, memory_kib
from resource_streams import ResourceStreams

from localcluster.cluster import RunningCluster
from localcluster.milvus_lite import MilvusLiteServer, connect
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


def milvus_call_seconds(metrics: str) -> dict[str, tuple[float, float]]:
    """Per operation, (calls, seconds) of the operator's Milvus-call histogram."""
    calls: dict[str, tuple[float, float]] = {}
    pattern = re.compile(r'^vector_operator_milvus_call_seconds_(count|sum)\{operation="([^"]*)"\} (\S+)$')
    for line in metrics.splitlines():
        if (match := pattern.match(line)) is not None:
            count, seconds = calls.get(match[2], (0.0, 0.0))
            value = float(match[3])
            calls[match[2]] = (value, seconds) if match[1] == "count" else (count, value)
    return calls


def calls_since(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> str:
    """`operation calls/seconds` of the calls made between two readings, the costliest first."""
    spent = {
        operation: (
            count - before.get(operation, (0.0, 0.0))[0],
            seconds - before.get(operation, (0.0, 0.0))[1],
        )
        for operation, (count, seconds) in after.items()
    }
    ordered = sorted(((op, c, s) for op, (c, s) in spent.items() if c), key=lambda item: -item[2])
    return ", ".join(f"{op} {c:.0f}/{s:.1f}s" for op, c, s in ordered)


ERROR_KINDS = (
    ("storage (re)initializing (CRD just applied)", "storage is (re)initializing"),
    ("pymilvus RPC error log", "_log_rpc_error"),
    ("cleanup failed temporarily", "Handler 'cleanup' failed temporarily"),
    ("reconcile failed temporarily", "Handler 'reconcile' failed temporarily"),
    ("Kopf API request retried", "Request attempt"),
)


def error_kinds(log_text: str) -> dict[str, int]:
    """The log's ERROR lines by kind (the first kind whose marker the line holds; else `other`)."""
    kinds: dict[str, int] = {}
    for line in log_text.splitlines():
        if "[ERROR" not in line:
            continue
        kind = next((name for name, marker in ERROR_KINDS if marker in line), "other")
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def wait_until_listable(custom: client.CustomObjectsApi, namespace: str, timeout: float = 60) -> None:
    """Until every custom resource of crds/ lists in the namespace (a changed CRD's storage
    answers 429 while it reinitialises)."""
    plurals = [
        path.name.split("_", 1)[1].removesuffix(".yaml") for path in (REPO_ROOT / "crds").glob("*.yaml")
    ]
    deadline = time.monotonic() + timeout
    for plural in plurals:
        while True:
            try:
                custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, limit=1)
                break
            except ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class ReadyWatch(ResourceStreams):
    """Records, from a watch on the namespace, when each object first shows Ready=True, and when
    each one is deleted (time.time(), the clock the create requests are timed on)."""

    def __init__(self, custom: client.CustomObjectsApi, namespace: str) -> None:
        super().__init__()
        self.ready_at: dict[str, float] = {}
        self.server_latency_s: dict[str, float] = {}
        self.written_s: dict[str, float] = {}
        """creationTimestamp -> the write that made it Ready (its managedFields time)."""
        self.delivery_lag_s: dict[str, float] = {}
        """That write's time -> the watch delivering it (this host's clock; whole seconds)."""
        self.deleted_at: dict[str, float] = {}
        self.follow(custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, PLURAL), self._record)

    def _record(self, kind: str, body: dict[str, Any], now: float) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.deleted_at.setdefault(name, now)
        elif name not in self.ready_at:
            for condition in (body.get("status") or {}).get("conditions") or []:
                if condition["type"] == "Ready" and condition["status"] == "True":
                    self.ready_at[name] = now
                    created = parse_time(body["metadata"]["creationTimestamp"])
                    turned = parse_time(condition["lastTransitionTime"])
                    self.server_latency_s[name] = (turned - created).total_seconds()
                    written = max(
                        parse_time(entry["time"])
                        for entry in body["metadata"].get("managedFields") or []
                        if entry.get("time")
                    )
                    self.written_s[name] = (written - created).total_seconds()
                    self.delivery_lag_s[name] = now - written.timestamp()


def run(
    cluster: RunningCluster, count: int, timeout: float, scratch: Path, log: Path, settle: float = 0.0
) -> list[tuple[str, str]]:
    """Measures ``count`` VectorCollections applied at once; prints the figures and returns them as
    (figure, value) pairs."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    custom = client.CustomObjectsApi(api)
    namespace = f"bench-vcol-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    wait_until_listable(custom, namespace)
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
            sent_at[name] = time.time()
            body = manifest(name, f"{prefix}_{name.replace('-', '_')}")
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

        calls_before = milvus_call_seconds(operator.metrics())
        cpu_before = cpu_seconds(operator.process.pid, True), cpu_seconds(milvus.pid, True)
        started = time.time()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(create, names))
        created_s = time.time() - started
        if not watcher.wait(lambda: len(watcher.ready_at) == count, timeout):
            late = sorted(set(names) - set(watcher.ready_at))
            raise RuntimeError(
                f"{len(late)} of {count} not Ready after {timeout:.0f}s: {late[:5]}; see {log}"
            )
        all_ready_s = max(watcher.ready_at.values()) - started
        operator_cpu_s = cpu_seconds(operator.process.pid, True) - cpu_before[0]
        milvus_cpu_s = cpu_seconds(milvus.pid, True) - cpu_before[1]
        calls_after = milvus_call_seconds(operator.metrics())
        call_s = sum(s for _, s in calls_after.values()) - sum(s for _, s in calls_before.values())
        call_count = sum(c for c, _ in calls_after.values()) - sum(c for c, _ in calls_before.values())
        latencies = [watcher.ready_at[name] - sent_at[name] for name in names]
        server = list(watcher.server_latency_s.values())
        written = list(watcher.written_s.values())
        lag = list(watcher.delivery_lag_s.values())
        peak_ready_kib = memory_kib(operator.process.pid, "VmHWM")
        ready_rss_kib = memory_kib(operator.process.pid, "VmRSS")
        time.sleep(settle)
        settled_rss_kib = memory_kib(operator.process.pid, "VmRSS")

        started = time.time()
        for name in names:
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        if not watcher.wait(lambda: len(watcher.deleted_at) == count, timeout):
            raise RuntimeError(f"only {len(watcher.deleted_at)} of {count} deleted after {timeout:.0f}s")
        all_deleted_s = max(watcher.deleted_at.values()) - started
        peak_kib = memory_kib(operator.process.pid, "VmHWM")
        remaining = [n for n in connect(milvus.uri).list_collections() if n.startswith(prefix)]
        kinds = error_kinds(log.read_text(errors="replace"))
        errors = sum(kinds.values())

        figures = [
            (
                "VectorCollections applied at once",
                f"{count}, created in {created_s:.2f}s (8 concurrent requests)",
            ),
            (
                "apply -> Ready (client: create sent -> Ready=True watched)",
                f"p50 {percentile(latencies, 50):.2f}s, p95 {percentile(latencies, 95):.2f}s,"
                f" max {max(latencies):.2f}s, mean {statistics.fmean(latencies):.2f}s",
            ),
            (
                "apply -> Ready (server: creationTimestamp -> Ready lastTransitionTime, whole seconds)",
                f"p50 {percentile(server, 50):.0f}s, p95 {percentile(server, 95):.0f}s,"
                f" max {max(server):.0f}s",
            ),
            (
                "apply -> Ready written (server: creationTimestamp -> managedFields time of that write)",
                f"p50 {percentile(written, 50):.0f}s, p95 {percentile(written, 95):.0f}s,"
                f" max {max(written):.0f}s; watch delivery after that write: p50 {percentile(lag, 50):.1f}s,"
                f" p95 {percentile(lag, 95):.1f}s",
            ),
            ("all Ready after the first create request", f"{all_ready_s:.2f}s"),
            (
                "CPU until all Ready",
                f"operator {operator_cpu_s:.1f}s, Milvus Lite {milvus_cpu_s:.1f}s"
                f" ({os.cpu_count()} cores, {all_ready_s:.1f}s wall)",
            ),
            (
                "operator's Milvus calls until all Ready",
                f"{call_count:.0f} calls, {call_s:.1f}s summed over threads"
                f" ({call_s / all_ready_s:.1f} threads busy in Milvus on average);"
                f" {calls_since(calls_before, calls_after)}",
            ),
            (
                "all deleted (aliases and collections dropped)",
                f"{all_deleted_s:.2f}s; left in Milvus: {len(remaining)}",
            ),
            (
                "operator memory",
                f"RSS idle {idle_kib / 1024:.0f} MiB, with {count} Ready {ready_rss_kib / 1024:.0f} MiB"
                + (f", {settle:.0f}s later {settled_rss_kib / 1024:.0f} MiB;" if settle else ";")
                + f" peak (VmHWM) {peak_ready_kib / 1024:.0f} MiB until Ready,"
                f" {peak_kib / 1024:.0f} MiB overall",
            ),
            (
                "operator log ERROR lines",
                f"{errors}"
                + (" (" + ", ".join(f"{k}: {n}" for k, n in kinds.items()) + ")" if kinds else ""),
            ),
        ]
        for figure, value in figures:
            print(f"{figure}: {value}")
        if remaining:
            raise RuntimeError(f"collections left in Milvus after deletion: {remaining[:5]}")
        return figures
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
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait once all are Ready before reading the operator's RSS again (default 0)",
    )
    add_state_dir_argument(parser)
    args = parser.parse_args(argv)
    scratch_dir = tempfile.TemporaryDirectory(prefix="vo-bench-operator-")
    with bench_cluster(args.state_dir) as cluster, scratch_dir as scratch:
        log = args.operator_log or Path(scratch) / "operator.log"
        log.unlink(missing_ok=True)
        run(cluster, args.count, args.timeout, Path(scratch), log, args.settle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
