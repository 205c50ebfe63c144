"""`make bench-scale`: a MigrationPlan of 100,000 batches, and ten plans at once.

Both parts adopt precomputed vectors (``source.files`` with ``vectorField``, Parquet files of unit
vectors of dimension 8 on a hostPath PersistentVolume bound by the real PV controller): a batch
Job reads, screens and upserts its records without loading a model, so a thousand real Jobs fit on
a 2-core machine. Each part uses the local cluster that `make cluster-up` started (or brings one up,
and down again after), a fresh namespace, its own Milvus Lite server and `vector-operator run` with
its default intervals, its Jobs run as host processes on the local node (as in `make
bench-migration`), as user ``vector-operator``, whose requests the API server's audit log records.

1. ``--part big``: a plan over ``--rows`` rows (default 1,000,000) with ``recordsPerJob``
   ``--records-per-job`` (default 10: 100,000 batches), run for its first ``--batches`` batches
   (default 1,000), then paused and deleted. It prints the planning time (create request -> the
   plan's batches known, i.e. status.progress.batchesTotal set; the inventory Job counts the files'
   records), the size of the plan's batches ConfigMap (and of its history ConfigMap), the size of
   the plan's status (at the end, and the largest seen), the operator's RSS (VmRSS along the way,
   VmHWM), its CPU time per finished Job, Jobs finished per minute, and the API requests the
   operator made per finished Job, by verb and resource, from the audit log: in particular how
   many ``list jobs`` per finished Job, and with which label selector (the observer lists a plan's
   own Jobs, and finished Jobs are deleted, so no list grows with the number of batches).
2. ``--part ten``: one plan alone (``--rows-per-plan`` rows, default 2,000, ``recordsPerJob`` 200:
   10 batches), timed from its create request to Succeeded; then ``--plans`` (default 10) plans on
   as many VectorCollections created at once. It prints rows/s of the plan alone and of the plans
   together (all their rows / first create -> last Succeeded) and their ratio; fairness: each plan's
   time to Succeeded and to its first finished batch (min / median / max), the batches each plan had
   finished when the first plan finished all of its own (min / max), Jain's index over the plans'
   rows/s, and whether every plan finished a batch before any plan finished all of its batches
   (no plan starves); then, per plan, when its first Job was created, its first pod scheduled, its
   first batch done and it Succeeded, how long its Jobs waited for the scheduler and how many of
   them had a pod the scheduler turned away (Unschedulable: the node's CPUs were all requested).

Every figure is printed as it is measured and once more as a table at the end (``| figure | value
|``, for the README). Nothing here asserts a timing; it fails only when something does not happen
within ``--timeout`` seconds. Everything it started is cleaned up on error or Ctrl-C: the plans
and collections (while the operator still runs, so that their finalizers are released), the
operator, the namespace, the PersistentVolume, Milvus Lite, and the cluster when it brought one up.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import vectorcollection_readiness
from bench_cluster import add_state_dir_argument, bench_cluster
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from process_figures import cpu_seconds, epoch_seconds, load, memory_kib
from resource_streams import ResourceStreams

from localcluster.cluster import RunningCluster
from localcluster.host_worker import host_worker_args
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.operator_process import OperatorProcess, start_operator
from vector_operator.migration.batch_jobs import BATCH_LABEL, PLAN_LABEL, TASK_LABEL, plan_label_value

REPO_ROOT = Path(__file__).resolve().parent.parent
GROUP, VERSION = "vectors.aios.dev", "v1alpha1"
PLANS, COLLECTIONS = "migrationplans", "vectorcollections"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 8
"""Small vectors keep a million rows in a few tens of megabytes (the model is never loaded: the
collection declares MiniLM truncated to 8 components, and the files carry no text to check)."""
ROW_GROUP = 1000
"""Rows per Parquet row group: a batch of a few records reads one group, never the whole file."""
ENDED = ("Succeeded", "Failed", "RolledBack")
Json = dict[str, Any]
Rows = list[tuple[str, str]]


# -- small helpers -----------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def kb(size: int) -> str:
    return f"{size:,} bytes ({size / 1024:.1f} KiB)"


def json_size(document: Any) -> int:
    return len(json.dumps(document, separators=(",", ":")).encode())


class Report:
    """The (figure, value) rows of a part, printed as they come."""

    def __init__(self, title: str) -> None:
        self.rows: Rows = []
        print(f"\n== {title}", flush=True)

    def add(self, figure: str, value: str) -> None:
        self.rows.append((figure, value))
        print(f"{figure}: {value}", flush=True)


# -- the source files --------------------------------------------------------------------------


def write_vectors(directory: Path, rows: int, files: int, seed: int = 7) -> None:
    """``rows`` records (id 0..rows-1, a random unit vector of DIMENSION float32) in ``files``
    Parquet files named in record order."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    rng = np.random.default_rng(seed)
    per_file = math.ceil(rows / files)
    for number in range(files):
        low, high = number * per_file, min(rows, (number + 1) * per_file)
        if low >= high:
            break
        vectors = rng.standard_normal((high - low, DIMENSION), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        offsets = pa.array(np.arange(0, (high - low + 1) * DIMENSION, DIMENSION, dtype=np.int32))
        table = pa.table(
            {
                "id": pa.array(np.arange(low, high, dtype=np.int64)),
                "embedding": pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1))),
            }
        )
        pq.write_table(table, directory / f"vectors-{number:03d}.parquet", row_group_size=ROW_GROUP)


def files_size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("*.parquet"))


# -- manifests ---------------------------------------------------------------------------------


def collection_manifest(name: str, alias: str) -> Json:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VectorCollection",
        "metadata": {"name": name},
        "spec": {
            "collectionName": alias,
            "dimension": DIMENSION,
            "metricType": "COSINE",
            "index": {"type": "HNSW", "params": {"M": 8, "efConstruction": 64}},
            "searchParams": {"ef": 32},
            "embedding": {"model": MODEL, "normalize": True, "truncateDim": DIMENSION},
            "deletionPolicy": "Delete",
        },
    }


@dataclass(frozen=True)
class JobShape:
    records_per_job: int
    max_concurrent_jobs: int
    cpu: str
    """Each Job pod's CPU request: the scheduler packs the node's 2 CPUs by it."""


def plan_manifest(name: str, collection: str, directory: Path, claim: str, shape: JobShape) -> Json:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MigrationPlan",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": collection},
            "mode": "BlueGreen",
            "source": {
                "files": {
                    "format": "Parquet",
                    "path": f"{directory}/vectors-*.parquet",
                    "idField": "id",
                    "vectorField": "embedding",
                    "persistentVolumeClaim": {"claimName": claim, "mountPath": str(directory)},
                }
            },
            "batching": {
                "recordsPerJob": shape.records_per_job,
                "maxConcurrentJobs": shape.max_concurrent_jobs,
                "podTemplate": {"resources": {"requests": {"cpu": shape.cpu}}},
            },
            "quality": {"sampleSize": 10},
        },
    }


# -- watching the namespace --------------------------------------------------------------------


@dataclass
class PlanSeen:
    phases: dict[str, float] = field(default_factory=dict)
    """Each phase's first-seen time."""
    body: Json = field(default_factory=dict)
    planned_at: float | None = None
    """When status.progress.batchesTotal was first seen."""
    status_bytes_max: int = 0


@dataclass
class JobSeen:
    name: str
    plan: str
    batch: int | None
    task: str | None
    created_at: float
    done_at: float | None = None
    """When the watch first saw the Job Complete or Failed."""
    complete: bool = False
    deleted_at: float | None = None


def _job_finished(job: Json) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return None


class NamespaceWatch(ResourceStreams):
    """Watches the namespace's plans, collections, Jobs and pods, and records when each thing was
    first seen (time.time(), the clock of the audit log's timestamps)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__()
        custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
        self.plans: dict[str, PlanSeen] = {}
        self.ready: dict[str, float] = {}
        self.jobs: dict[str, JobSeen] = {}
        self.scheduled: dict[str, float] = {}
        """Job name -> when the watch first saw one of its pods scheduled (PodScheduled=True)."""
        self.unschedulable: dict[str, set[str]] = {}
        """Job name -> its pods the scheduler marked Unschedulable."""
        self.deleted: set[tuple[str, str]] = set()
        self.follow(custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, PLANS), self._plan)
        self.follow(
            custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, COLLECTIONS), self._collection
        )
        self.follow(batch.list_namespaced_job, (namespace,), self._job)
        self.follow(client.CoreV1Api(api).list_namespaced_pod, (namespace,), self._pod)

    def _plan(self, kind: str, body: Json, now: float) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.deleted.add((PLANS, name))
            return
        seen = self.plans.setdefault(name, PlanSeen())
        seen.body = body
        status = body.get("status") or {}
        seen.status_bytes_max = max(seen.status_bytes_max, json_size(status))
        if status.get("phase"):
            seen.phases.setdefault(status["phase"], now)
        if seen.planned_at is None and (status.get("progress") or {}).get("batchesTotal"):
            seen.planned_at = now

    def _collection(self, kind: str, body: Json, now: float) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.deleted.add((COLLECTIONS, name))
            return
        for condition in (body.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get("status") == "True":
                self.ready.setdefault(name, now)

    def _job(self, kind: str, body: Json, now: float) -> None:
        metadata = body["metadata"]
        labels = metadata.get("labels") or {}
        plan = labels.get(PLAN_LABEL)
        if plan is None:
            return
        batch = labels.get(BATCH_LABEL)
        seen = self.jobs.setdefault(
            metadata["name"],
            JobSeen(
                metadata["name"],
                plan,
                int(batch) if batch is not None else None,
                labels.get(TASK_LABEL),
                now,
            ),
        )
        if kind == "DELETED":
            seen.deleted_at = seen.deleted_at or now
            self.deleted.add(("jobs", metadata["name"]))
        finished = _job_finished(body)
        if seen.done_at is None and finished is not None:
            seen.done_at, seen.complete = now, finished == "Complete"

    def _pod(self, kind: str, body: Json, now: float) -> None:
        metadata = body["metadata"]
        job = (metadata.get("labels") or {}).get("job-name")
        if job is None or kind == "DELETED":
            return
        for condition in (body.get("status") or {}).get("conditions") or []:
            if condition.get("type") != "PodScheduled":
                continue
            if condition.get("status") == "True":
                self.scheduled.setdefault(job, now)
            elif condition.get("reason") == "Unschedulable":
                self.unschedulable.setdefault(job, set()).add(metadata["name"])

    # -- views (call with self.changed held, or accept a racy read) --

    def batch_jobs(self, plan: str) -> list[JobSeen]:
        label = plan_label_value(plan)
        return [j for j in self.jobs.values() if j.plan == label and j.batch is not None]

    def task_jobs(self, plan: str) -> list[JobSeen]:
        label = plan_label_value(plan)
        return [j for j in self.jobs.values() if j.plan == label and j.task is not None]

    def ended(self, plan: str) -> str | None:
        seen = self.plans.get(plan)
        return next((p for p in ENDED if seen is not None and p in seen.phases), None)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(low, 1) for low, _ in intervals] + [(high, -1) for _, high in intervals])
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


# -- the namespace a part runs in --------------------------------------------------------------


@dataclass
class Bench:
    cluster: RunningCluster
    api: client.ApiClient
    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    namespace: str
    milvus: MilvusLiteServer
    watch: NamespaceWatch
    log: Path
    run_id: str
    operator: OperatorProcess | None = None
    audited: bool = False
    """The operator runs as user vector-operator and the API server writes the audit log."""
    volumes: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.operator is not None
        return self.operator.process.pid

    def create(self, body: Json) -> float:
        """Creates a VectorCollection or MigrationPlan; the time the request was sent."""
        plural = PLANS if body["kind"] == "MigrationPlan" else COLLECTIONS
        sent = time.time()
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)
        return sent

    def get(self, plural: str, name: str) -> Json:
        got = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        return cast(Json, got)

    def until(self, what: str, done: Callable[[], Any], timeout: float) -> None:
        if not self.watch.wait(done, timeout):
            raise RuntimeError(f"{what}: not within {timeout:.0f}s (operator log: {self.log})")
        if self.operator is not None and self.operator.process.poll() is not None:
            raise RuntimeError(f"the operator exited ({self.operator.process.returncode}); see {self.log}")

    def claim(self, directory: Path, name: str) -> None:
        """A PersistentVolume on the node's ``directory`` and a claim bound to it by the real PV
        binder (as tests/e2e/test_backup_restore.py does); mounted at the same path, so the Jobs
        that run as host processes read it there."""
        volume_name = f"{self.namespace}-{name}"
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume_name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "manual",
                "hostPath": {"path": str(directory), "type": "Directory"},
                "claimRef": {"namespace": self.namespace, "name": name},
            },
        }
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "manual",
                "volumeName": volume_name,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
        self.volumes.append(volume_name)
        self.cluster.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in (volume, claim)))
        deadline = time.monotonic() + 60
        while True:
            got = self.core.read_namespaced_persistent_volume_claim(name, self.namespace)
            if got.status is not None and got.status.phase == "Bound":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the claim {name} was not bound within 60s")
            time.sleep(0.5)

    def collections(self, names: list[str], timeout: float) -> None:
        """Creates the VectorCollections and waits until all are Ready."""
        for name in names:
            self.create(collection_manifest(name, f"scale_{self.run_id}_{name.replace('-', '_')}"))
        self.until(
            f"{len(names)} VectorCollections Ready", lambda: set(names) <= set(self.watch.ready), timeout
        )

    def delete_plan(self, name: str, timeout: float) -> float:
        """Pauses the plan (no new Jobs), deletes it and waits until it and its Jobs are gone; the
        seconds that took."""
        started = time.monotonic()
        with contextlib.suppress(ApiException):
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLANS, name, {"spec": {"paused": True}}
            )
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLANS, name)
        except ApiException as error:
            if error.status != 404:
                raise
        label = plan_label_value(name)

        def gone() -> bool:
            jobs = [j for j in self.watch.jobs.values() if j.plan == label and j.deleted_at is None]
            return (PLANS, name) in self.watch.deleted and not jobs

        self.until(f"plan {name} and its Jobs deleted", gone, timeout)
        return time.monotonic() - started

    def delete_collection(self, name: str, timeout: float) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, COLLECTIONS, name)
        except ApiException as error:
            if error.status != 404:
                raise
        self.until(f"collection {name} deleted", lambda: (COLLECTIONS, name) in self.watch.deleted, timeout)

    def errors(self) -> tuple[int, int]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text.count("[ERROR"), text.count("[WARNING")


@contextlib.contextmanager
def bench_namespace(cluster: RunningCluster, scratch: Path, part: str) -> Iterator[Bench]:
    """A fresh namespace with the CRDs, a Milvus Lite server and the operator (as user
    vector-operator when the cluster has that identity); everything removed afterwards."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    for plural in (PLANS, COLLECTIONS):
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{plural}.{GROUP}")
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    run_id = uuid.uuid4().hex[:6]
    namespace = f"bench-scale-{part}-{run_id}"
    cluster.kubectl("create", "namespace", namespace)
    milvus = MilvusLiteServer(scratch / f"milvus-{part}")
    bench = Bench(
        cluster=cluster,
        api=api,
        custom=client.CustomObjectsApi(api),
        core=client.CoreV1Api(api),
        namespace=namespace,
        milvus=milvus,
        watch=NamespaceWatch(api, namespace),
        log=scratch / f"operator-{part}.log",
        run_id=run_id,
    )
    try:
        milvus.start()
        kubeconfig = cluster.operator_kubeconfig
        bench.audited = kubeconfig.exists()
        if not bench.audited:
            print(f"no {kubeconfig}: the operator runs as the admin, and no API request is counted")
        bench.operator = start_operator(
            cluster,
            namespace,
            milvus.uri,
            bench.log,
            *host_worker_args(),  # the Jobs run on the local node agent as host processes
            kubeconfig=kubeconfig if bench.audited else None,
        )
        bench.watch.start()
        time.sleep(1)  # let the watches establish before the first create
        yield bench
    finally:
        operator = bench.operator
        if operator is not None:
            if operator.process.poll() is None:
                for plural in (PLANS, COLLECTIONS):
                    cluster.kubectl(
                        "delete", plural, "--all", "-n", namespace, "--timeout=300s", check=False, timeout=330
                    )
            operator.stop()
        bench.watch.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        for volume in bench.volumes:
            cluster.kubectl("delete", "pv", volume, "--wait=false", "--ignore-not-found", check=False)
        milvus.stop()


# -- the audit log -----------------------------------------------------------------------------


@dataclass
class Requests:
    """The operator's requests in a window, from the audit log."""

    namespaced: Counter[tuple[str, str]] = field(default_factory=Counter)
    cluster_scoped: Counter[tuple[str, str]] = field(default_factory=Counter)
    list_jobs_selectors: Counter[str] = field(default_factory=Counter)
    list_jobs_times: list[float] = field(default_factory=list)
    config_map_gets: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    """Responses of 400 and above (namespaced and cluster-scoped), by code."""

    @property
    def namespaced_total(self) -> int:
        return sum(self.namespaced.values())

    @property
    def cluster_total(self) -> int:
        return sum(self.cluster_scoped.values())


def audit_files(cluster: RunningCluster) -> list[Path]:
    """The audit log and its rotated backup (the API server renames a full log aside)."""
    log = cluster.audit_log
    rotated = sorted(log.parent.glob(f"{log.stem}-*{log.suffix}"))
    return [*rotated, log] if log.exists() else rotated


def read_requests(cluster: RunningCluster, namespace: str, start: float, end: float) -> Requests:
    found = Requests()
    for path in audit_files(cluster):
        with path.open(errors="replace") as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line being written
                at = epoch_seconds(event.get("requestReceivedTimestamp"))
                if at is None or not start <= at <= end:
                    continue
                ref = event.get("objectRef") or {}
                verb = str(event.get("verb"))
                if ref.get("resource"):
                    resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
                else:
                    resource = urlsplit(str(event.get("requestURI", "?"))).path
                own = ref.get("namespace") == namespace
                if ref.get("namespace") and not own:
                    continue  # another namespace's operator (another user of the cluster)
                (found.namespaced if own else found.cluster_scoped)[(verb, resource)] += 1
                code = (event.get("responseStatus") or {}).get("code")
                if isinstance(code, int) and code >= 400:
                    found.failed[str(code)] += 1
                if own and (verb, resource) == ("list", "jobs"):
                    query = parse_qs(urlsplit(str(event.get("requestURI", ""))).query)
                    found.list_jobs_selectors[",".join(query.get("labelSelector", [])) or "(none)"] += 1
                    found.list_jobs_times.append(at)
                if own and (verb, resource) == ("get", "configmaps"):
                    found.config_map_gets[str(ref.get("name"))] += 1
    return found


def request_rows(report: Report, found: Requests, finished: int, what: str) -> None:
    """The requests of ``found`` per finished Job, with the breakdown by (verb, resource)."""
    per = max(finished, 1)
    report.add(
        f"{what}: API requests of the operator in the namespace",
        f"{found.namespaced_total:,} ({found.namespaced_total / per:.2f} per finished Job)",
    )
    report.add(
        f"{what}: API requests of the operator, cluster-scoped (no namespace: nodes, CRDs, discovery)",
        f"{found.cluster_total:,} ({found.cluster_total / per:.2f} per finished Job)",
    )
    both = found.namespaced_total + found.cluster_total
    report.add(f"{what}: API requests per finished Job, both", f"{both / per:.2f}")
    for (verb, resource), count in found.namespaced.most_common():
        report.add(f"{what}: {verb} {resource}", f"{count:,} ({count / per:.2f} per finished Job)")
    for (verb, resource), count in found.cluster_scoped.most_common():
        report.add(
            f"{what}: {verb} {resource} (cluster-scoped)", f"{count:,} ({count / per:.2f} per finished Job)"
        )
    if found.failed:
        report.add(
            f"{what}: responses >= 400", ", ".join(f"{c}: {n}" for c, n in sorted(found.failed.items()))
        )


# -- part 1: the big plan ----------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    succeeded: int
    rss_kib: int
    cpu_s: float
    status_bytes: int
    jobs_existing: int


def big_plan(
    cluster: RunningCluster,
    scratch: Path,
    rows: int = 1_000_000,
    records_per_job: int = 10,
    batches_to_run: int = 1000,
    timeout: float = 3600.0,
    *,
    max_concurrent_jobs: int = 6,
    cpu: str = "250m",
    files: int = 10,
) -> Rows:
    """A plan of ``rows`` / ``records_per_job`` batches run for its first ``batches_to_run``
    batches: planning time, ConfigMap and status sizes, operator RSS and CPU, Jobs per minute, API
    requests per finished Job. ``timeout``: seconds each wait may take."""
    total_batches = math.ceil(rows / records_per_job)
    batches_to_run = min(batches_to_run, total_batches)
    report = Report(
        f"one plan of {rows:,} rows, recordsPerJob {records_per_job} ({total_batches:,} batches), "
        f"its first {batches_to_run:,} batches"
    )
    corpus = scratch / "corpus-big"
    started = time.monotonic()
    write_vectors(corpus, rows, files)
    report.add(
        "source",
        f"{rows:,} unit vectors of dimension {DIMENSION} in {files} Parquet files, {kb(files_size(corpus))} "
        f"(written in {time.monotonic() - started:.1f}s)",
    )
    shape = JobShape(records_per_job, max_concurrent_jobs, cpu)
    report.add(
        "Jobs",
        f"maxConcurrentJobs {shape.max_concurrent_jobs}, CPU request {shape.cpu} each (the node has "
        f"{os.cpu_count()} CPUs); {load()}",
    )
    with bench_namespace(cluster, scratch, "big") as bench:
        bench.claim(corpus, "corpus")
        bench.collections(["big"], timeout)
        pid, watched = bench.pid, bench.watch
        idle_kib = memory_kib(pid, "VmRSS")
        report.add("operator RSS before the plan (VmRSS)", mib(idle_kib))

        created = bench.create(plan_manifest("big", "big", corpus, "corpus", shape))
        bench.until(
            "the plan is planned (status.progress.batchesTotal)",
            lambda: "big" in watched.plans and watched.plans["big"].planned_at,
            timeout,
        )
        with watched.changed:
            seen = watched.plans["big"]
            planned_at = seen.planned_at or 0.0
            total = ((seen.body.get("status") or {}).get("progress") or {}).get("batchesTotal")
            inventory = watched.task_jobs("big")
        planned_rss = memory_kib(pid, "VmRSS")
        inventory_text = ""
        for job in inventory:
            done = "?" if job.done_at is None else f"+{job.done_at - created:.1f}s"
            inventory_text += f"; inventory Job created +{job.created_at - created:.1f}s, done {done}"
        report.add(
            "planning: create request -> status.progress.batchesTotal seen",
            f"{planned_at - created:.1f}s ({total:,} batches{inventory_text})",
        )
        if total != total_batches:
            raise RuntimeError(f"the plan has {total} batches, expected {total_batches}")
        planned_event = None
        for _ in range(20):  # the operator posts its Events after the step
            if (planned_event := _event_time(bench, "big", "Planned")) is not None:
                break
            time.sleep(0.5)
        server_created = epoch_seconds(seen.body["metadata"].get("creationTimestamp"))
        report.add(
            "planning by the server's timestamps (creationTimestamp -> Event Planned, whole seconds)",
            "no Planned Event found"
            if planned_event is None or server_created is None
            else f"{planned_event - server_created:.0f}s",
        )
        report.add("operator RSS once planned (VmRSS)", mib(planned_rss))

        def first_job() -> bool:
            return bool(watched.batch_jobs("big"))

        bench.until("the first batch Job", first_job, timeout)
        with watched.changed:
            window_start = min(j.created_at for j in watched.batch_jobs("big"))
        report.add("first batch Job created after the create request", f"{window_start - created:.1f}s")
        phases = ", ".join(
            f"{p} +{t - created:.1f}s" for p, t in sorted(seen.phases.items(), key=lambda x: x[1])
        )
        report.add("phases first seen", phases)
        cpu_start = cpu_seconds(pid)

        def succeeded() -> int:
            body = watched.plans["big"].body
            return int(((body.get("status") or {}).get("progress") or {}).get("batchesSucceeded") or 0)

        samples: list[Sample] = []
        deadline = time.monotonic() + timeout
        milestones = sorted({max(1, batches_to_run * q // 100) for q in (10, 25, 50, 75, 100)})
        while True:
            reached = watched.wait(lambda: succeeded() >= batches_to_run, 10)
            now = time.time()
            with watched.changed:
                done_count = succeeded()
                status_bytes = json_size(watched.plans["big"].body.get("status") or {})
                existing = sum(1 for j in watched.jobs.values() if j.deleted_at is None)
                phase = (watched.plans["big"].body.get("status") or {}).get("phase")
            samples.append(
                Sample(now, done_count, memory_kib(pid, "VmRSS"), cpu_seconds(pid), status_bytes, existing)
            )
            if phase in ENDED:
                raise RuntimeError(
                    f"the plan ended {phase} after {done_count} batches: "
                    f"{json.dumps(watched.plans['big'].body.get('status'))[:3000]}"
                )
            if reached:
                break
            if len(samples) % 6 == 0:
                print(
                    f"  +{now - window_start:.0f}s: {done_count} batches succeeded, "
                    f"RSS {mib(samples[-1].rss_kib)}, status {status_bytes:,} bytes, {existing} Jobs exist; "
                    f"{load()}",
                    flush=True,
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done_count} of {batches_to_run} batches within {timeout:.0f}s")
            if bench.operator is not None and bench.operator.process.poll() is not None:
                raise RuntimeError(f"the operator exited; see {bench.log}")
        window_end = time.time()
        cpu_end = cpu_seconds(pid)
        end_rss, end_hwm = memory_kib(pid, "VmRSS"), memory_kib(pid, "VmHWM")
        stored = bench.get(PLANS, "big")
        status = stored.get("status") or {}
        config_maps = {name: _config_map(bench, name) for name in ("big-batches", "big-history")}
        with watched.changed:
            jobs = watched.batch_jobs("big")
            finished = [j for j in jobs if j.done_at is not None and j.done_at <= window_end]
            status_max = watched.plans["big"].status_bytes_max
            existing_intervals = [(j.created_at, j.deleted_at or window_end) for j in watched.jobs.values()]
            running_intervals = [(j.created_at, j.done_at or window_end) for j in jobs]
        window = window_end - window_start
        progress = status.get("progress") or {}
        report.add(
            "run: first batch Job created -> batchesSucceeded >= target",
            f"{window:.1f}s; {progress.get('batchesSucceeded')} batches succeeded, "
            f"{len(finished)} batch Jobs seen finished "
            f"({sum(1 for j in finished if not j.complete)} failed), "
            f"{progress.get('recordsDone')} records written",
        )
        report.add("Jobs finished per minute", f"{len(finished) / window * 60:.1f}")
        report.add(
            "Jobs at once: running (created -> finished) / existing (created -> deleted) at most",
            f"{most_at_once(running_intervals)} / {most_at_once(existing_intervals)}",
        )
        for name, found in config_maps.items():
            if found is None:
                report.add(f"ConfigMap {name}", "not found")
                continue
            payload = sum(
                len(str(v)) for part in ("data", "binaryData") for v in (found.get(part) or {}).values()
            )
            extra = ""
            if name == "big-batches":
                encoded = (found.get("binaryData") or {}).get("batches.json.gz.b64", "")
                raw = gzip.decompress(base64.b64decode(encoded)) if encoded else b""
                extra = f"; the boundaries: {len(raw):,} bytes of JSON before gzip and base64"
            report.add(
                f"ConfigMap {name}: data + binaryData / whole object as JSON",
                f"{kb(payload)} / {kb(json_size(found))} (limit 1 MiB){extra}",
            )
        report.add(
            "plan status (.status as JSON) at the end / largest seen",
            f"{kb(json_size(status))} / {kb(status_max)}; completedRanges {status.get('completedRanges')!r}, "
            f"recentBatches {len(status.get('recentBatches') or [])}",
        )
        report.add("operator RSS at the end (VmRSS) / peak (VmHWM)", f"{mib(end_rss)} / {mib(end_hwm)}")
        for mark in milestones:
            sample = next((s for s in samples if s.succeeded >= mark), None)
            if sample is not None:
                report.add(
                    f"at {mark} batches succeeded (+{sample.at - window_start:.0f}s)",
                    f"RSS {mib(sample.rss_kib)}, operator CPU {sample.cpu_s - cpu_start:.1f}s, "
                    f"status {sample.status_bytes:,} bytes, {sample.jobs_existing} Jobs exist",
                )
        per_job_cpu = (cpu_end - cpu_start) / max(len(finished), 1)
        report.add(
            "operator CPU per finished Job",
            f"{per_job_cpu * 1000:.0f} ms ({cpu_end - cpu_start:.1f}s in the run)",
        )
        half = [s for s in samples if s.succeeded >= batches_to_run // 2]
        if half and samples[-1].succeeded > half[0].succeeded:
            first_half = (half[0].cpu_s - cpu_start) / max(half[0].succeeded, 1)
            second_half = (samples[-1].cpu_s - half[0].cpu_s) / (samples[-1].succeeded - half[0].succeeded)
            report.add(
                "operator CPU per finished Job, first half / second half of the run",
                f"{first_half * 1000:.0f} ms / {second_half * 1000:.0f} ms",
            )
        if bench.audited:
            time.sleep(2)  # the audit log is written as the responses complete
            during = read_requests(cluster, bench.namespace, window_start, window_end)
            request_rows(report, during, len(finished), "run")
            for selector, count in during.list_jobs_selectors.most_common():
                report.add(f"run: list jobs with labelSelector {selector}", f"{count:,}")
            middle = window_start + window / 2
            early = sum(1 for t in during.list_jobs_times if t < middle)
            late = len(during.list_jobs_times) - early
            early_jobs = sum(1 for j in finished if j.done_at is not None and j.done_at < middle)
            late_jobs = len(finished) - early_jobs
            report.add(
                "run: list jobs per finished Job, first half / second half of the run",
                f"{early / max(early_jobs, 1):.2f} ({early} / {early_jobs} Jobs) / "
                f"{late / max(late_jobs, 1):.2f} ({late} / {late_jobs} Jobs)",
            )
            batches_cm = config_maps.get("big-batches")
            reads = during.config_map_gets.get("big-batches", 0)
            per_job = max(len(finished), 1)
            if batches_cm is not None:
                report.add(
                    "run: the batches ConfigMap read (get) per finished Job, bytes read per finished Job",
                    f"{reads / per_job:.2f}, {reads * json_size(batches_cm) / per_job:,.0f} bytes "
                    f"({reads:,} reads)",
                )
            planning = read_requests(cluster, bench.namespace, created - 1, window_start)
            report.add(
                "planning: API requests of the operator (namespace / cluster-scoped), create -> first Job",
                f"{planning.namespaced_total} / {planning.cluster_total}: "
                + ", ".join(f"{v} {r} {n}" for (v, r), n in planning.namespaced.most_common(8)),
            )
        else:
            report.add("API requests per finished Job", "not measured: the cluster has no operator audit log")
        cleanup = bench.delete_plan("big", timeout)
        report.add("paused and deleted (the plan, its Jobs, its ConfigMaps)", f"in {cleanup:.1f}s")
        bench.delete_collection("big", timeout)
        errors, warnings = bench.errors()
        report.add("operator log", f"{errors} ERROR lines, {warnings} WARNING lines")
    return report.rows


def _config_map(bench: Bench, name: str) -> Json | None:
    try:
        response = bench.core.read_namespaced_config_map(name, bench.namespace, _preload_content=False)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    found: Json = json.loads(cast(Any, response).data)
    return found


def _event_time(bench: Bench, plan: str, reason: str) -> float | None:
    listed = bench.core.list_namespaced_event(
        bench.namespace, field_selector=f"involvedObject.name={plan},reason={reason}", _preload_content=False
    )
    times = [
        epoch_seconds(e.get("eventTime") or e.get("firstTimestamp") or e["metadata"].get("creationTimestamp"))
        for e in json.loads(cast(Any, listed).data)["items"]
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


# -- part 2: ten plans at once -----------------------------------------------------------------


@dataclass
class PlanRun:
    name: str
    created: float
    succeeded: float
    batch_done: list[float]
    """Each finished batch Job's finish time (as watched), ascending."""

    @property
    def seconds(self) -> float:
        return self.succeeded - self.created


def _run_of(bench: Bench, name: str, created: float) -> PlanRun:
    watched = bench.watch
    with watched.changed:
        seen = watched.plans[name]
        if "Succeeded" not in seen.phases:
            raise RuntimeError(
                f"plan {name} ended {bench.watch.ended(name)}: {json.dumps(seen.body.get('status'))[:3000]}"
            )
        done = sorted(j.done_at for j in watched.batch_jobs(name) if j.done_at is not None and j.complete)
        return PlanRun(name, created, seen.phases["Succeeded"], done)


def jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values)) if values else 0.0


def ten_plans(
    cluster: RunningCluster,
    scratch: Path,
    plans: int = 10,
    rows_per_plan: int = 2000,
    records_per_job: int = 200,
    timeout: float = 1200.0,
    *,
    max_concurrent_jobs: int = 4,
    cpu: str = "250m",
) -> Rows:
    """One plan alone, then ``plans`` plans on as many collections at once: rows/s of each, their
    ratio, and fairness. ``timeout``: seconds each wait may take."""
    batches = math.ceil(rows_per_plan / records_per_job)
    report = Report(
        f"{plans} plans at once against one alone: {rows_per_plan:,} rows each, recordsPerJob "
        f"{records_per_job} ({batches} batches each)"
    )
    corpus = scratch / "corpus-ten"
    write_vectors(corpus, rows_per_plan, 2)
    shape = JobShape(records_per_job, max_concurrent_jobs, cpu)
    report.add(
        "Jobs",
        f"maxConcurrentJobs {shape.max_concurrent_jobs} per plan, CPU request {shape.cpu} each (the node has "
        f"{os.cpu_count()} CPUs: {int(os.cpu_count() or 1) * 1000 // _millicpu(cpu)} such pods at once); "
        f"every plan reads the same {rows_per_plan:,} rows; {load()}",
    )
    names = [f"fair-{i:02d}" for i in range(plans)]
    with bench_namespace(cluster, scratch, "ten") as bench:
        bench.claim(corpus, "corpus")
        bench.collections(["solo", *names], timeout)
        watched = bench.watch

        created = bench.create(plan_manifest("solo", "solo", corpus, "corpus", shape))
        bench.until("the plan alone ends", lambda: watched.ended("solo"), timeout)
        solo = _run_of(bench, "solo", created)
        solo_rate = rows_per_plan / solo.seconds
        report.add(
            "one plan alone: create request -> Succeeded",
            f"{solo.seconds:.1f}s, {solo_rate:.1f} rows/s ({len(solo.batch_done)} batch Jobs)",
        )
        bench.delete_plan("solo", timeout)
        bench.delete_collection("solo", timeout)
        cpu_start = cpu_seconds(bench.pid)
        print(f"  {load()}", flush=True)

        sent: dict[str, float] = {}
        for name in names:
            sent[name] = bench.create(plan_manifest(name, name, corpus, "corpus", shape))
        first = min(sent.values())
        bench.until(f"{plans} plans end", lambda: all(watched.ended(n) for n in names), timeout)
        runs = [_run_of(bench, name, sent[name]) for name in names]
        cpu_used = cpu_seconds(bench.pid) - cpu_start
        last = max(r.succeeded for r in runs)
        together = plans * rows_per_plan / (last - first)
        report.add(
            f"{plans} plans at once: first create request -> last Succeeded",
            f"{last - first:.1f}s, {together:.1f} rows/s in all "
            f"(creates sent within {max(sent.values()) - first:.2f}s)",
        )
        report.add(f"{plans} plans at once / one alone (rows/s)", f"{together / solo_rate:.2f}")
        seconds = sorted(r.seconds for r in runs)
        report.add(
            "each plan: create request -> Succeeded, min / median / max",
            f"{seconds[0]:.1f}s / {statistics.median(seconds):.1f}s / {seconds[-1]:.1f}s",
        )
        first_batch = sorted(r.batch_done[0] - r.created for r in runs if r.batch_done)
        report.add(
            "each plan: create request -> its first batch finished, min / median / max",
            f"{first_batch[0]:.1f}s / {statistics.median(first_batch):.1f}s / {first_batch[-1]:.1f}s",
        )
        first_finisher = min(runs, key=lambda r: r.batch_done[-1])
        at = first_finisher.batch_done[-1]
        done_then = [sum(1 for t in r.batch_done if t <= at) for r in runs]
        report.add(
            f"batches done per plan when the first plan ({first_finisher.name}) finished its {batches}",
            f"min {min(done_then)}, max {max(done_then)} (per plan: {', '.join(map(str, done_then))})",
        )
        rates = [rows_per_plan / r.seconds for r in runs]
        report.add(
            "Jain's fairness index over the plans' rows/s (1 = equal)",
            f"{jain(rates):.3f} (rows/s per plan {min(rates):.1f}-{max(rates):.1f})",
        )
        latest_first = max(r.batch_done[0] for r in runs)
        earliest_all = min(r.batch_done[-1] for r in runs)
        starves = latest_first >= earliest_all
        report.add(
            "no plan starves (every plan finished a batch before any finished all of its batches)",
            f"{'no' if starves else 'yes'}: the last plan's first batch finished "
            f"+{latest_first - first:.1f}s, "
            f"the first plan to finish all its batches at +{earliest_all - first:.1f}s",
        )
        with watched.changed:
            intervals = [
                (j.created_at, j.done_at or last) for j in watched.jobs.values() if j.plan.startswith("fair-")
            ]
        report.add(
            "batch Jobs created and unfinished at once, at most (all plans)", f"{most_at_once(intervals)}"
        )
        for row in scheduling_rows(watched, runs, first):
            report.add(*row)
        finished = sum(len(r.batch_done) for r in runs)
        report.add(
            "operator CPU per finished batch Job (ten plans)", f"{cpu_used / max(finished, 1) * 1000:.0f} ms"
        )
        report.add(
            "operator RSS at the end (VmRSS) / peak (VmHWM)",
            f"{mib(memory_kib(bench.pid, 'VmRSS'))} / {mib(memory_kib(bench.pid, 'VmHWM'))}",
        )
        if bench.audited:
            time.sleep(2)
            during = read_requests(cluster, bench.namespace, first, last)
            per = max(finished, 1)
            report.add(
                f"{plans} plans, create -> Succeeded: API requests per batch Job (namespace / cluster)",
                f"{during.namespaced_total / per:.2f} / {during.cluster_total / per:.2f} "
                f"({during.namespaced_total:,} / {during.cluster_total:,} for {finished} Jobs; list jobs "
                f"{during.namespaced.get(('list', 'jobs'), 0) / per:.2f} per Job)",
            )
        errors, warnings = bench.errors()
        report.add("operator log", f"{errors} ERROR lines, {warnings} WARNING lines")
    return report.rows


def scheduling_rows(watched: NamespaceWatch, runs: list[PlanRun], first: float) -> Rows:
    """Where each plan's time went: its Jobs' wait for the scheduler (Job created -> a pod of it
    scheduled), the pods the scheduler turned away (Unschedulable: the node's CPUs were taken),
    the first batch finished and Succeeded, in seconds from the first create request."""
    rows: Rows = []
    waits_all: list[float] = []
    turned_away = total = 0
    with watched.changed:
        for run in runs:
            jobs = sorted(watched.batch_jobs(run.name), key=lambda j: j.created_at)
            waits = [watched.scheduled[j.name] - j.created_at for j in jobs if j.name in watched.scheduled]
            away = sum(1 for j in jobs if j.name in watched.unschedulable)
            waits_all += waits
            turned_away, total = turned_away + away, total + len(jobs)
            scheduled = sorted(watched.scheduled[j.name] for j in jobs if j.name in watched.scheduled)
            rows.append(
                (
                    f"{run.name}: first Job created / first pod scheduled / first batch done / Succeeded",
                    f"+{jobs[0].created_at - first:.1f}s / "
                    + (f"+{scheduled[0] - first:.1f}s" if scheduled else "?")
                    + f" / +{run.batch_done[0] - first:.1f}s / +{run.succeeded - first:.1f}s; "
                    f"Job created -> pod scheduled median {statistics.median(waits) if waits else 0:.1f}s, "
                    f"max {max(waits, default=0):.1f}s; {away} of {len(jobs)} Jobs had a pod Unschedulable",
                )
            )
    rows.append(
        (
            "all plans: batch Job created -> its pod scheduled, median / max; Jobs with a pod Unschedulable",
            f"{statistics.median(waits_all) if waits_all else 0:.1f}s / {max(waits_all, default=0):.1f}s; "
            f"{turned_away} of {total}",
        )
    )
    return rows


def _millicpu(text: str) -> int:
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


# -- running it alone --------------------------------------------------------------------------


def table(rows: Rows) -> str:
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {figure} | {value.replace('|', '/')} |" for figure, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--part", choices=("collections", "big", "ten", "all"), default="all", help="which part (default all)"
    )
    parser.add_argument(
        "--collections", type=int, default=500, help="VectorCollections applied at once (default 500)"
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the big plan (default 1000000)")
    parser.add_argument(
        "--records-per-job", type=int, default=10, help="the big plan's recordsPerJob (default 10)"
    )
    parser.add_argument(
        "--batches", type=int, default=1000, help="batches of the big plan to run (default 1000)"
    )
    parser.add_argument(
        "--max-concurrent-jobs", type=int, default=6, help="the big plan's maxConcurrentJobs (default 6)"
    )
    parser.add_argument("--plans", type=int, default=10, help="plans at once (default 10)")
    parser.add_argument(
        "--rows-per-plan", type=int, default=2000, help="rows of each of those plans (default 2000)"
    )
    parser.add_argument(
        "--plan-records-per-job", type=int, default=200, help="their recordsPerJob (default 200)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds each wait may take (default 3600)"
    )
    add_state_dir_argument(parser)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="vo-bench-scale-"))
    scratch.chmod(0o755)  # the Jobs read the files under it
    rows: Rows = []
    started = time.monotonic()
    try:
        with bench_cluster(args.state_dir) as cluster:
            if args.part in ("collections", "all"):
                # first, on a quiet machine: its latency is what an SRE applying them would see
                part_started = time.monotonic()
                (scratch / "collections").mkdir()
                log = scratch / "collections" / "operator.log"
                found = vectorcollection_readiness.run(
                    cluster, args.collections, args.timeout, scratch / "collections", log, settle=60
                )
                rows += [(f"{args.collections} VectorCollections: {what}", value) for what, value in found]
                rows.append(("collections part: wall time", f"{time.monotonic() - part_started:.0f}s"))
            if args.part in ("big", "all"):
                part_started = time.monotonic()
                rows += big_plan(
                    cluster,
                    scratch,
                    rows=args.rows,
                    records_per_job=args.records_per_job,
                    batches_to_run=args.batches,
                    timeout=args.timeout,
                    max_concurrent_jobs=args.max_concurrent_jobs,
                )
                rows.append(("big plan part: wall time", f"{time.monotonic() - part_started:.0f}s"))
            if args.part in ("ten", "all"):
                part_started = time.monotonic()
                rows += ten_plans(
                    cluster,
                    scratch,
                    plans=args.plans,
                    rows_per_plan=args.rows_per_plan,
                    records_per_job=args.plan_records_per_job,
                    timeout=args.timeout,
                )
                rows.append(("ten plans part: wall time", f"{time.monotonic() - part_started:.0f}s"))
                # The same plans sized to fit the node together (maxConcurrentJobs 1, 200m each:
                # ten Jobs in 2 CPUs): what docs/operations.md advises when plans share a node.
                part_started = time.monotonic()
                (scratch / "fitted").mkdir(mode=0o755)
                fitted = ten_plans(
                    cluster,
                    scratch / "fitted",
                    plans=args.plans,
                    rows_per_plan=args.rows_per_plan,
                    records_per_job=args.plan_records_per_job,
                    timeout=args.timeout,
                    max_concurrent_jobs=1,
                    cpu="200m",
                )
                rows += [(f"sized to fit: {what}", value) for what, value in fitted]
                rows.append(("sized to fit: wall time", f"{time.monotonic() - part_started:.0f}s"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{table(rows)}\n\n(all in {time.monotonic() - started:.0f}s; {load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
