"""`make bench-migration`: how close a whole migration comes to the model's own speed.

A MigrationPlan of ``--rows`` rows (default 10,000; the texts of ``make bench``, bench/text_corpus.py)
from SQLite into Milvus Lite, through the operator and real Jobs on the local node (the worker runs
as a host process, as in the end-to-end tests), beside bare ``SentenceTransformer.encode`` of the same
texts in the same run. Uses the local cluster that `make cluster-up` started (or brings one up, and
down again after), its own Milvus Lite server on 127.0.0.1, and `vector-operator run` for a fresh
namespace with its default intervals (``--operator-arg`` passes more flags).

Each round, for each backend (``--backends``, default torch), in rotating order so that a load
change on the shared machine hits both alike (never at the same time):

1. encode: bare ``encode(texts)`` in this process (model loaded and warmed up once, beforehand);
2. migration: writes the rows to a fresh SQLite file, creates a Secret, a VectorCollection and a
   MigrationPlan (new names each round) and times from the first create request to the moment a
   watch sees the plan's phase ``Succeeded``; reads the plan's Jobs, their pods and the workers'
   results (the pods' termination messages), then deletes the plan and the collection
   (deletionPolicy Delete) and waits until they are gone.

It prints, per backend, the medians over rounds of end-to-end vectors/s and vectors/min and of bare
encode vectors/s, then ``migration/encode[<backend>]: 0.xx`` (the median of the per-round ratios;
with torch alone also a plain ``migration/encode: 0.xx``), then where the median round's time went,
from the create request to Succeeded, in segments that add up to the total:

- planning: create request -> the plan's first Job created (with the phases' first-seen times);
- Jobs: first Job created -> last Job finished, of which idle: no Job of the plan existed unfinished;
- validation + cutover: last Job finished -> Succeeded (split at the phases Validating, CuttingOver);

and, per Job (Jobs overlap when several run at once): scheduling (Job created -> container running,
as watched), start-up (the worker's timings.startupMs, process start -> model ready, when it reports
one; else the container's lifetime minus the batch's work after the model loaded), model load, then
the batch's work (totalMs - modelLoadMs): encode, writes and reads (they overlap), flush, quality;
exit (container lifetime - start-up - work: the result written -> the pod seen terminated), and pod
ended -> Job complete. The operator deletes a plan's Jobs once it ends, so all of this comes from
watches on the namespace's Jobs and pods (their last state, with the termination message). Also the
Job sizing the plan chose (status.sizing), and the operator's peak RSS (VmHWM).

Nothing here asserts a timing; it fails only when a plan fails or something does not finish within
``--timeout`` seconds. Everything it started is cleaned up on error or Ctrl-C: the objects (while
the operator still runs, so that their finalizers are released), the operator, the namespace,
Milvus Lite, and the cluster when it brought one up. ``--keep`` leaves the last round's objects and
the namespace for inspection.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as the worker command sets it

from bench_cluster import add_state_dir_argument, bench_cluster
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from process_figures import epoch_seconds, load, memory_kib
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException
from resource_streams import ResourceStreams
from text_corpus import DIMENSION, MODEL, corpus

from localcluster.cluster import RunningCluster
from localcluster.host_worker import host_worker_args
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.operator_process import OperatorProcess, start_operator
from vector_operator.migration.batch_jobs import BATCH_LABEL, PLAN_LABEL, plan_label_value

REPO_ROOT = Path(__file__).resolve().parent.parent
GROUP, VERSION = "vectors.aios.dev", "v1alpha1"
PLANS, COLLECTIONS = "migrationplans", "vectorcollections"
BACKENDS = ("torch", "onnx", "openvino")
ENDED = ("Succeeded", "Failed", "RolledBack")
PHASES = ("Pending", "Planning", "Preparing", "Generating", "Validating", "CuttingOver", "Succeeded")
Json = dict[str, Any]


# -- the documents -----------------------------------------------------------------------------


def write_sqlite(path: Path, texts: list[str]) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        connection.executemany("INSERT INTO articles VALUES (?, ?)", enumerate(texts))


def documents(
    name: str, alias: str, database: Path, backend: str, records_per_job: str | None, max_jobs: str | None
) -> tuple[Json, Json, Json]:
    """The Secret, VectorCollection and MigrationPlan of one round (the quickstart's, on one text
    column and without scalar fields)."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": {"url": f"sqlite:///{database}"},
    }
    embedding: Json = {"model": MODEL, "normalize": True, "device": "cpu"}
    if backend != "torch":
        embedding["backend"] = backend
    collection = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VectorCollection",
        "metadata": {"name": name},
        "spec": {
            "collectionName": alias,
            "dimension": DIMENSION,
            "metricType": "COSINE",
            "index": {"type": "HNSW", "params": {"M": 16, "efConstruction": 100}},
            "searchParams": {"ef": 64},
            "embedding": embedding,
            "deletionPolicy": "Delete",
        },
    }
    batching: Json = {}
    for key, value in (("recordsPerJob", records_per_job), ("maxConcurrentJobs", max_jobs)):
        if value is not None:
            batching[key] = int(value) if value.isdigit() else value
    plan_spec: Json = {
        "targetRef": {"name": name},
        "mode": "BlueGreen",
        "source": {
            "sql": {
                "urlSecretRef": {"name": name, "key": "url"},
                "table": "articles",
                "primaryKey": "id",
                "textColumns": ["body"],
            }
        },
    }
    if batching:
        plan_spec["batching"] = batching
    plan = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MigrationPlan",
        "metadata": {"name": name},
        "spec": plan_spec,
    }
    return secret, collection, plan


# -- watching the namespace --------------------------------------------------------------------


@dataclass
class PlanSeen:
    phases: dict[str, float] = field(default_factory=dict)
    """Each phase's first-seen time."""
    body: Json = field(default_factory=dict)


@dataclass
class JobSeen:
    name: str
    plan: str
    """The plan label's value."""
    created_at: float
    done_at: float | None = None
    """When the watch first saw the Job Complete or Failed."""
    body: Json = field(default_factory=dict)


@dataclass
class PodSeen:
    name: str
    job: str
    running_at: float | None = None
    terminated_at: float | None = None
    body: Json = field(default_factory=dict)


def _container(pod: Json) -> Json:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def _job_done(job: Json) -> bool:
    return any(
        c.get("status") == "True" and c.get("type") in ("Complete", "Failed")
        for c in (job.get("status") or {}).get("conditions") or []
    )


class NamespaceWatch(ResourceStreams):
    """Watches the namespace's plans, collections, Jobs and pods, and records when each thing was
    first seen (time.time(): sub-second, where the API server's timestamps have whole seconds)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__()
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.plans: dict[str, PlanSeen] = {}
        self.ready: dict[str, float] = {}
        self.jobs: dict[str, JobSeen] = {}
        self.pods: dict[str, PodSeen] = {}
        self.deleted: set[tuple[str, str]] = set()
        ns = namespace
        self.follow(self.custom.list_namespaced_custom_object, (GROUP, VERSION, ns, PLANS), self._plan)
        self.follow(
            self.custom.list_namespaced_custom_object, (GROUP, VERSION, ns, COLLECTIONS), self._collection
        )
        self.follow(self.batch.list_namespaced_job, (ns,), self._job)
        self.follow(self.core.list_namespaced_pod, (ns,), self._pod)

    def _plan(self, kind: str, body: Json, now: float) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.deleted.add((PLANS, name))
            return
        seen = self.plans.setdefault(name, PlanSeen())
        seen.body = body
        phase = (body.get("status") or {}).get("phase")
        if phase:
            seen.phases.setdefault(phase, now)

    def _collection(self, kind: str, body: Json, now: float) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.deleted.add((COLLECTIONS, name))
            return
        for condition in (body.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get("status") == "True":
                self.ready.setdefault(name, now)

    def _job(self, kind: str, body: Json, now: float) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.deleted.add(("jobs", name))
            return
        plan = (body["metadata"].get("labels") or {}).get(PLAN_LABEL)
        if plan is None:
            return
        seen = self.jobs.setdefault(name, JobSeen(name, plan, now))
        seen.body = body
        if seen.done_at is None and _job_done(body):
            seen.done_at = now

    def _pod(self, kind: str, body: Json, now: float) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.deleted.add(("pods", name))
            return
        job = (body["metadata"].get("labels") or {}).get("job-name")
        if job is None:
            return
        seen = self.pods.setdefault(name, PodSeen(name, job))
        seen.body = body
        state = _container(body).get("state") or {}
        if seen.running_at is None and ("running" in state or "terminated" in state):
            seen.running_at = now
        if seen.terminated_at is None and "terminated" in state:
            seen.terminated_at = now


# -- the operator ------------------------------------------------------------------------------


# -- bare encode -------------------------------------------------------------------------------


class Encoder:
    """The reference every backend's migration is compared with: bare ``SentenceTransformer.encode``
    (torch, float32, sentence-transformers' own batching) in this process, loaded and warmed up once."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        from vector_operator.worker.model_loading import resolve_model

        self.model: Any = SentenceTransformer(str(resolve_model(MODEL)), device="cpu", local_files_only=True)
        self.model.encode(["warm-up"] * 64, show_progress_bar=False)

    def seconds(self, texts: list[str]) -> float:
        started = time.perf_counter()
        self.model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return time.perf_counter() - started


# -- one migration -----------------------------------------------------------------------------


@dataclass
class JobFigures:
    name: str
    batch: int
    records: int
    created: float
    running: float | None
    terminated: float | None
    done: float | None
    result: Json


@dataclass
class Migration:
    round: int
    backend: str
    seconds: float
    started: float
    phases: dict[str, float]
    collection_ready: float | None
    jobs: list[JobFigures]
    status: Json
    spec_batching: Json
    cleanup_seconds: float | None = None
    server_seconds: float | None = None
    rss_peak_kib: int = 0


@dataclass
class Bench:
    cluster: RunningCluster
    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    batch: client.BatchV1Api
    watch: NamespaceWatch
    namespace: str
    milvus_uri: str
    scratch: Path
    log: Path
    operator: subprocess.Popen[bytes]
    args: argparse.Namespace
    run_id: str
    created: list[str] = field(default_factory=list)
    """Names of the rounds' objects (Secret, collection, plan), until deleted."""
    kept: list[str] = field(default_factory=list)


def _result(pod: Json) -> Json:
    message = ((_container(pod).get("state") or {}).get("terminated") or {}).get("message") or ""
    try:
        document = json.loads(message)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _raw_list(response: Any) -> list[Json]:
    items: list[Json] = json.loads(response.data)["items"]
    return items


def collect_jobs(bench: Bench, plan: str) -> list[JobFigures]:
    """The plan's Jobs and their pods: the times the watch saw, the latest bodies (listed afresh when
    they still exist: the operator deletes a plan's Jobs once it has ended)."""
    label = plan_label_value(plan)
    selector = f"{PLAN_LABEL}={label}"
    listed = _raw_list(
        bench.batch.list_namespaced_job(bench.namespace, label_selector=selector, _preload_content=False)
    )
    pods = _raw_list(
        bench.core.list_namespaced_pod(bench.namespace, label_selector=selector, _preload_content=False)
    )
    pod_bodies = {pod["metadata"]["name"]: pod for pod in pods}
    figures = []
    with bench.watch.changed:
        jobs = {name: seen.body for name, seen in bench.watch.jobs.items() if seen.plan == label}
        jobs.update({job["metadata"]["name"]: job for job in listed})
        for name, job in jobs.items():
            seen = bench.watch.jobs.get(name)
            created = seen.created_at if seen else epoch_seconds(job["metadata"]["creationTimestamp"])
            done = seen.done_at if seen else None
            if done is None:
                done = epoch_seconds((job.get("status") or {}).get("completionTime"))
            job_pods = [p for p in bench.watch.pods.values() if p.job == name]
            job_pods.sort(key=lambda p: p.terminated_at or p.running_at or 0.0)
            last = job_pods[-1] if job_pods else None
            body = pod_bodies.get(last.name, last.body) if last else {}
            result = _result(body) or (_result(last.body) if last else {})
            state = _container(body).get("state") or {}
            running = last.running_at if last else None
            if running is None:
                started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
                running = epoch_seconds(started)
            terminated = last.terminated_at if last else None
            if terminated is None:
                terminated = epoch_seconds((state.get("terminated") or {}).get("finishedAt"))
            labels = job["metadata"].get("labels") or {}
            figures.append(
                JobFigures(
                    name=name,
                    batch=int(labels.get(BATCH_LABEL, "-1")),
                    records=int((result.get("records") or {}).get("read") or 0),
                    created=created or 0.0,
                    running=running,
                    terminated=terminated,
                    done=done,
                    result=result,
                )
            )
    return sorted(figures, key=lambda f: (f.created, f.batch))


def create(bench: Bench, body: Json) -> None:
    kind = body["kind"]
    if kind == "Secret":
        bench.core.create_namespaced_secret(bench.namespace, client.V1Secret.model_validate(body))
    else:
        plural = PLANS if kind == "MigrationPlan" else COLLECTIONS
        bench.custom.create_namespaced_custom_object(GROUP, VERSION, bench.namespace, plural, body)


def migrate(bench: Bench, round_number: int, backend: str, texts: list[str]) -> Migration:
    args = bench.args
    name = f"bench-r{round_number + 1}-{backend}"
    alias = f"bench_{bench.run_id}_r{round_number + 1}_{backend}"
    database = bench.scratch / f"{name}.db"
    write_sqlite(database, texts)
    secret, collection, plan = documents(
        name, alias, database, backend, args.records_per_job, args.max_concurrent_jobs
    )
    bench.created.append(name)
    create(bench, secret)
    started = time.time()
    create(bench, collection)
    create(bench, plan)
    if backend != "torch":
        stored: Any = bench.custom.get_namespaced_custom_object(
            GROUP, VERSION, bench.namespace, COLLECTIONS, name
        )
        if stored["spec"]["embedding"].get("backend") != backend:
            raise RuntimeError(
                f"the VectorCollection CRD dropped spec.embedding.backend={backend}: it has no such field"
            )
    watched = bench.watch

    def ended() -> bool:
        seen = watched.plans.get(name)
        return seen is not None and any(phase in seen.phases for phase in ENDED)

    if not watched.wait(ended, args.timeout):
        seen = watched.plans.get(name, PlanSeen())
        raise RuntimeError(
            f"plan {name} did not end within {args.timeout:.0f}s (phases seen: {list(seen.phases)}; "
            f"status: {json.dumps(seen.body.get('status') or {})[:2000]}); operator log: {bench.log}"
        )
    with watched.changed:
        seen = watched.plans[name]
        phases, body = dict(seen.phases), seen.body
    if "Succeeded" not in phases:
        raise RuntimeError(
            f"plan {name} ended {body.get('status', {}).get('phase')}: "
            f"{json.dumps(body.get('status') or {})[:3000]}; operator log: {bench.log}"
        )
    seconds = phases["Succeeded"] - started
    status = body.get("status") or {}
    server = None
    created_at, completed_at = (
        epoch_seconds(body["metadata"].get("creationTimestamp")),
        status.get("completedAt"),
    )
    if created_at is not None and completed_at:
        server = (epoch_seconds(completed_at) or created_at) - created_at
    migration = Migration(
        round=round_number,
        backend=backend,
        seconds=seconds,
        started=started,
        phases=phases,
        collection_ready=watched.ready.get(name),
        jobs=collect_jobs(bench, name),
        status=status,
        spec_batching=(body.get("spec") or {}).get("batching") or {},
        server_seconds=server,
        rss_peak_kib=memory_kib(bench.operator.pid, "VmHWM"),
    )
    last_round = round_number == args.rounds - 1
    if args.keep and last_round:
        bench.kept.append(name)
    else:
        migration.cleanup_seconds = clean_up(bench, name, args.timeout)
        try:
            milvus = MilvusClient(uri=bench.milvus_uri)  # short-lived: an idle one draws GOAWAYs
            try:
                leftover = [c for c in milvus.list_collections() if c.startswith(alias)]
            finally:
                milvus.close()
        except MilvusException as error:  # pymilvus reuses a channel the server may have closed
            print(f"  could not check Milvus for leftovers of {name}: {error}")
            leftover = []
        if leftover:
            print(f"  WARNING: left in Milvus after deleting {name}: {leftover}")
    return migration


def clean_up(bench: Bench, name: str, timeout: float) -> float:
    """Deletes a round's plan, collection and Secret (the plan's Jobs go with it); the seconds until
    the plan, the collection and the Jobs are gone."""
    started = time.monotonic()
    selector = f"{PLAN_LABEL}={plan_label_value(name)}"
    jobs = _raw_list(
        bench.batch.list_namespaced_job(bench.namespace, label_selector=selector, _preload_content=False)
    )
    wanted = {("jobs", job["metadata"]["name"]) for job in jobs}
    for plural in (PLANS, COLLECTIONS):
        try:
            bench.custom.delete_namespaced_custom_object(GROUP, VERSION, bench.namespace, plural, name)
            wanted.add((plural, name))
        except ApiException as error:
            if error.status != 404:
                raise
    try:
        bench.core.delete_namespaced_secret(name, bench.namespace)
    except ApiException as error:
        if error.status != 404:
            raise
    watched = bench.watch
    if not watched.wait(lambda: wanted <= watched.deleted, timeout):
        raise RuntimeError(f"not deleted within {timeout:.0f}s: {sorted(wanted - watched.deleted)}")
    bench.created.remove(name)
    return time.monotonic() - started


# -- the report --------------------------------------------------------------------------------


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for low, high in sorted(intervals):
        if high > end:
            total += high - max(low, end)
            end = high
    return total


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(low, 1) for low, _ in intervals] + [(high, -1) for _, high in intervals])
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def _ms(result: Json, key: str) -> float | None:
    value = (result.get("timings") or {}).get(key)
    return None if value is None else float(value) / 1000.0


@dataclass
class JobTimes:
    scheduling: float | None
    start_up: float | None
    model_load: float | None
    work: float | None
    encode: float | None
    write: float | None
    read: float | None
    flush: float | None
    quality: float | None
    other: float | None
    """Container lifetime not in start-up or work (exit); only when startupMs is reported."""
    ending: float | None
    """Pod terminated -> Job complete."""


def job_times(job: JobFigures) -> JobTimes:
    result = job.result
    total, model = _ms(result, "totalMs"), _ms(result, "modelLoadMs")
    startup_ms = _ms(result, "startupMs")
    work = None if total is None else total - (model or 0.0)
    lifetime = None if job.running is None or job.terminated is None else job.terminated - job.running
    start_up, other = startup_ms, None
    if startup_ms is None and lifetime is not None and work is not None:
        start_up = lifetime - work
    elif startup_ms is not None and lifetime is not None and work is not None:
        other = lifetime - startup_ms - work
    flush = _ms(result, "flushMs")
    return JobTimes(
        scheduling=None if job.running is None else job.running - job.created,
        start_up=start_up,
        model_load=model,
        work=work,
        encode=_ms(result, "encodeMs"),
        write=_ms(result, "writeMs"),
        read=_ms(result, "readMs"),
        flush=flush,
        quality=_ms(result, "qualityMs"),
        other=other,
        ending=None if job.done is None or job.terminated is None else job.done - job.terminated,
    )


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _s(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}s"


def segments(m: Migration) -> tuple[float, float, float, float]:
    """planning, Jobs (first created -> last finished), idle within it, validation + cutover."""
    if not m.jobs:
        return m.seconds, 0.0, 0.0, 0.0
    first = min(j.created for j in m.jobs)
    ends = [j.done or j.terminated or first for j in m.jobs]
    last = max(ends)
    window = last - first
    busy = union_seconds([(j.created, end) for j, end in zip(m.jobs, ends, strict=True)])
    return first - m.started, window, window - busy, m.started + m.seconds - last


def sizing(m: Migration) -> str:
    progress = m.status.get("progress") or {}
    total, batches = progress.get("recordsTotal"), progress.get("batchesTotal")
    per_job = sorted({j.records for j in m.jobs})
    ends = [(j.created, j.done or j.terminated or j.created) for j in m.jobs]
    spec = ", ".join(
        f"{k} {v}" for k, v in m.spec_batching.items() if k in ("recordsPerJob", "maxConcurrentJobs")
    )
    chosen = _flatten(m.status.get("sizing") or {})
    pace = {k: v for k, v in (m.status.get("throughput") or {}).items() if k.startswith("job")}
    return (
        f"{batches} batches / {len(m.jobs)} Jobs for {total} records; records per Job read: "
        f"{', '.join(map(str, per_job)) or '?'}; at most {most_at_once(ends)} Jobs at once; "
        f"spec.batching as stored: {spec or 'none'}"
        + (f"; status.sizing: {', '.join(f'{k}={v}' for k, v in chosen.items())}" if chosen else "")
        + (f"; status.throughput: {', '.join(f'{k}={v}' for k, v in pace.items())}" if pace else "")
    )


def _flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(document, dict):
        flat: dict[str, Any] = {}
        for key, value in document.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: document}


def summary_line(m: Migration, rows: int) -> str:
    planning, jobs, idle, closing = segments(m)
    times = [job_times(j) for j in m.jobs]
    start_up = _mean([t.start_up for t in times])
    scheduling = _mean([t.scheduling for t in times])
    return (
        f"{rows / m.seconds:.1f} vectors/s ({m.seconds:.1f}s); planning {planning:.1f}s, Jobs {jobs:.1f}s "
        f"(idle {idle:.1f}s), validation+cutover {closing:.1f}s; {len(m.jobs)} Jobs, per Job: scheduling "
        f"{_s(scheduling)}, start-up {_s(start_up)}, encode {_s(_mean([t.encode for t in times]))}"
    )


def breakdown(m: Migration, rows: int) -> list[str]:
    planning, jobs, idle, closing = segments(m)
    at = {phase: seen - m.started for phase, seen in m.phases.items()}
    phase_text = ", ".join(f"{p} +{at[p]:.1f}s" for p in PHASES if p in at)
    ready = (
        ""
        if m.collection_ready is None
        else f"; VectorCollection Ready +{m.collection_ready - m.started:.1f}s"
    )
    last = m.started + m.seconds - closing
    splits = []
    for phase, label in (("Validating", "-> Validating"), ("CuttingOver", "-> CuttingOver")):
        if phase in m.phases:
            splits.append(f"{label} {m.phases[phase] - last:+.1f}s")
    lines = [
        f"where the time went (round {m.round + 1}, {m.backend}: {m.seconds:.1f}s from the create request "
        f"to Succeeded; server timestamps {_s(m.server_seconds)}):",
        f"  planning            {planning:6.1f}s  create request -> first Job created ({phase_text}{ready})",
        f"  Jobs                {jobs:6.1f}s  first Job created -> last Job finished",
        f"    idle              {idle:6.1f}s  no Job of the plan created and unfinished",
        f"  validation+cutover  {closing:6.1f}s  last Job finished -> Succeeded"
        + (f" ({', '.join(splits)} after the last Job finished)" if splits else ""),
    ]
    times = [job_times(j) for j in m.jobs]
    if times:

        def mean(pick: Callable[[JobTimes], float | None]) -> str:
            return _s(_mean([pick(t) for t in times]))

        startup_source = (
            "startupMs"
            if any("startupMs" in (j.result.get("timings") or {}) for j in m.jobs)
            else "container lifetime - batch work"
        )
        lines += [
            f"  per Job (mean of {len(times)}; Jobs overlap when several run at once):",
            f"    Job start-up: scheduling {mean(lambda t: t.scheduling)} (Job created -> container "
            f"running), start-up {mean(lambda t: t.start_up)} ({startup_source}; model load "
            f"{mean(lambda t: t.model_load)})",
            f"    batch work {mean(lambda t: t.work)}: encode {mean(lambda t: t.encode)}, writes "
            f"{mean(lambda t: t.write)}, reads {mean(lambda t: t.read)} (overlapped), flush "
            f"{mean(lambda t: t.flush)}, quality {mean(lambda t: t.quality)}"
            + (f"; exit {mean(lambda t: t.other)}" if any(t.other is not None for t in times) else ""),
            f"    pod ended -> Job complete {mean(lambda t: t.ending)}",
            "  Jobs (seconds from the create request):",
        ]
        for job, t in zip(m.jobs, times, strict=True):

            def rel(moment: float | None) -> str:
                return "?" if moment is None else f"+{moment - m.started:.1f}"

            lines.append(
                f"    batch {job.batch}: {job.records} records; created {rel(job.created)}, running "
                f"{rel(job.running)}, pod ended {rel(job.terminated)}, Job done {rel(job.done)}; start-up "
                f"{_s(t.start_up)}, encode {_s(t.encode)}, writes {_s(t.write)}, work {_s(t.work)}"
                + (f", {job.records / t.work:.0f} records/s of work" if t.work else "")
            )
    lines.append(f"  sizing: {sizing(m)}")
    return lines


# -- the run -----------------------------------------------------------------------------------


def run(cluster: RunningCluster, args: argparse.Namespace, scratch: Path, log: Path) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    for plural in (PLANS, COLLECTIONS):
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{plural}.{GROUP}")
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    namespace = f"bench-mig-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    milvus_server = MilvusLiteServer(scratch / "milvus")
    milvus_server.start()
    watcher = NamespaceWatch(api, namespace)
    operator: OperatorProcess | None = None
    bench = None
    try:
        texts = corpus(args.rows)
        import torch

        if args.encode_threads:
            torch.set_num_threads(args.encode_threads)
        encoder = Encoder()

        tokenizer = encoder.model.tokenizer
        tokens = sorted(len(ids) for ids in tokenizer(texts[:1000])["input_ids"])
        words = sorted(len(text.split()) for text in texts)
        print(
            f"{len(texts)} texts of {words[0]}-{words[-1]} words (median {words[len(words) // 2]}; "
            f"{tokens[0]}-{tokens[-1]} tokens in the first 1,000, median {tokens[len(tokens) // 2]}); "
            f"{MODEL}, torch threads {torch.get_num_threads()}; backends {', '.join(args.backends)}"
        )
        # The Jobs run on the local node agent as host processes: this interpreter's worker.
        worker = host_worker_args()
        operator = start_operator(cluster, namespace, milvus_server.uri, log, *worker, *args.operator_arg)
        idle_kib = memory_kib(operator.process.pid, "VmRSS")
        watcher.start()
        time.sleep(1)  # let the watches establish before the first create
        bench = Bench(
            cluster=cluster,
            custom=client.CustomObjectsApi(api),
            core=client.CoreV1Api(api),
            batch=client.BatchV1Api(api),
            watch=watcher,
            namespace=namespace,
            milvus_uri=milvus_server.uri,
            scratch=scratch,
            log=log,
            operator=operator.process,
            args=args,
            run_id=uuid.uuid4().hex[:6],
        )
        print(f"before: {load()}")
        encode_s: list[float] = []  # bare torch encode, once a round: every backend is compared with it
        migrations: dict[str, list[Migration]] = {b: [] for b in args.backends}
        order = [("encode", "torch")] + [("migration", backend) for backend in args.backends]
        for round_number in range(args.rounds):  # rotate the order: drifting load hits all alike
            shift = round_number % len(order)
            for kind, backend in order[shift:] + order[:shift]:
                if kind == "encode":
                    encode_s.append(encoder.seconds(texts))
                    print(
                        f"round {round_number + 1} bare encode (torch): "
                        f"{len(texts) / encode_s[-1]:.1f} vectors/s"
                    )
                else:
                    m = migrate(bench, round_number, backend, texts)
                    migrations[backend].append(m)
                    print(f"round {round_number + 1} [{backend}] migration: {summary_line(m, len(texts))}")
                    if m.cleanup_seconds is not None:
                        print(f"  deleted (plan, collection, Jobs) in {m.cleanup_seconds:.1f}s")
            print(f"round {round_number + 1}: {load()}")
        print(f"after:  {load()}")
        peak_kib = memory_kib(operator.process.pid, "VmHWM")

        print()
        rows = len(texts)
        for backend in args.backends:
            done = migrations[backend]
            end_to_end = rows / statistics.median(m.seconds for m in done)
            bare = rows / statistics.median(encode_s)
            ratios = [e / m.seconds for e, m in zip(encode_s, done, strict=True)]
            print(
                f"[{backend}] migration end to end (create request -> Succeeded): {end_to_end:.1f} "
                f"vectors/s, {end_to_end * 60:,.0f} vectors/min; bare encode: {bare:.1f} vectors/s "
                f"(medians of {len(done)} rounds; ratios per round: {', '.join(f'{r:.2f}' for r in ratios)})"
            )
        for backend in args.backends:
            done = migrations[backend]
            ratios = [e / m.seconds for e, m in zip(encode_s, done, strict=True)]
            print(f"migration/encode[{backend}]: {statistics.median(ratios):.2f}")
        if args.backends == ["torch"]:
            ratios = [e / m.seconds for e, m in zip(encode_s, migrations["torch"], strict=True)]
            print(f"migration/encode: {statistics.median(ratios):.2f}")
        for backend in args.backends:
            done = sorted(migrations[backend], key=lambda m: m.seconds)
            print()
            print("\n".join(breakdown(done[(len(done) - 1) // 2], rows)))
        errors = [line for line in log.read_text(errors="replace").splitlines() if "[ERROR" in line]
        warnings = log.read_text(errors="replace").count("[WARNING")
        print()
        print(
            f"operator memory: RSS idle {idle_kib / 1024:.0f} MiB; peak (VmHWM) "
            + ", ".join(f"{m.rss_peak_kib / 1024:.0f}" for b in args.backends for m in migrations[b])
            + f" MiB after each migration, {peak_kib / 1024:.0f} MiB overall"
        )
        print(f"operator log: {len(errors)} ERROR lines, {warnings} WARNING lines ({log})")
        for line in errors[-5:]:
            print(f"  {line[:300]}")
    finally:
        if operator is not None:
            if operator.process.poll() is None and bench is not None:
                for name in [n for n in bench.created if n not in bench.kept]:
                    try:
                        clean_up(bench, name, 120)
                    except Exception as error:
                        print(f"cleaning up {name}: {error}", file=sys.stderr)
            elif operator.process.poll() is None:
                for plural in (PLANS, COLLECTIONS):
                    cluster.kubectl("delete", plural, "--all", "-n", namespace, "--timeout=120s", check=False)
            operator.stop()
        watcher.stop()  # after the clean-up, which waits on it
        if bench is not None and bench.kept:
            objects = " ".join(f"{kind}/{name}" for name in bench.kept for kind in ("mplan", "vcol"))
            print(
                f"kept in namespace {namespace}: {', '.join(bench.kept)}; operator log and Milvus Lite "
                f"data: {scratch}. The operator has stopped, so their finalizers stay; to remove them:\n"
                f"  for o in {objects}; do kubectl -n {namespace} patch $o --type=merge "
                '-p \'{"metadata":{"finalizers":null}}\'; done; '
                f"kubectl delete namespace {namespace}"
            )
        else:
            cluster.kubectl(
                "delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False
            )
        milvus_server.stop()


def backends(text: str) -> list[str]:
    chosen = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"backends are among {', '.join(BACKENDS)}; got {text!r}")
    return list(dict.fromkeys(chosen))


def count_or_auto(text: str) -> str:
    if text != "auto" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"a positive integer or auto, not {text!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10000, help="rows to migrate (default 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="migrations per backend (default 3); medians")
    parser.add_argument(
        "--records-per-job",
        type=count_or_auto,
        help="the plan's batching.recordsPerJob (an integer or auto); default: not set (the operator's)",
    )
    parser.add_argument(
        "--max-concurrent-jobs",
        type=count_or_auto,
        help="the plan's batching.maxConcurrentJobs (an integer or auto); default: not set (the operator's)",
    )
    parser.add_argument(
        "--backends",
        type=backends,
        default=["torch"],
        help="comma-separated among torch, onnx, openvino (default torch); a backend other than torch "
        "sets the VectorCollection's spec.embedding.backend",
    )
    parser.add_argument(
        "--encode-threads",
        type=int,
        help="torch threads of the bare encode (default: torch's own, one per core); on a loaded machine "
        "two threads can encode slower than one",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds a migration or a cleanup may take (default 1800)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the last round's objects and the namespace (and the scratch directory) for inspection",
    )
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for `vector-operator run` (repeatable), "
        "e.g. --operator-arg=--plan-interval=1",
    )
    parser.add_argument(
        "--operator-log", type=Path, help="write the operator's log here (default: in the scratch directory)"
    )
    add_state_dir_argument(parser)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="vo-bench-migration-"))
    try:
        with bench_cluster(args.state_dir, keep=args.keep) as cluster:
            log = args.operator_log or scratch / "operator.log"
            log.unlink(missing_ok=True)
            run(cluster, args, scratch, log)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
