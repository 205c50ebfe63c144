"""`make bench-sync`: how far behind its table a syncing collection stays, and how fast the sync
applies changes next to the model's own speed.

A MigrationPlan with ``sync.mode: Continuous`` (change column ``version``, soft deletes, the default
``interval`` of 10s) fills a collection from a ``--rows``-row SQLite table (default 20,000; the
texts of ``make bench``), through the operator, real Jobs and the sync worker's Deployment on the
local node (host processes, as in the end-to-end tests). Once the plan is ``Syncing``, a writer
commits ``--rate`` changes per second (default 20) for ``--duration`` seconds (default 300), mixed:
text updates, scalar-only updates (the vector is reused), inserts and soft deletes. Every change
bumps the row's ``version``, stored as a scalar field, so a watcher that queries Milvus for the
changed ids every ``--poll`` seconds sees when each one became visible (its version there, or its
id gone): the lag from commit to searchable, as p50/p95/max.

``sync/encode``: the rate at which the worker applied changed rows (rows / seconds of passes that
applied any: reading, embedding, writing, flushing) divided by bare ``SentenceTransformer.encode``
of the same texts in this process, with as many torch threads as the worker was given
(``--worker-cpus``, its pod's CPU request). ``reembed/encode`` is the same for the re-embedded rows
alone. Nothing is asserted about time; it fails only when something does not finish within
``--timeout``. Everything it started is cleaned up, the cluster too when it brought one up.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_cluster import REPO_ROOT, add_state_dir_argument, bench_cluster
from text_corpus import MODEL, corpus

from localcluster.cluster import RunningCluster
from localcluster.host_worker import host_worker_args
from localcluster.milvus_lite import MilvusLiteServer, connect
from localcluster.operator_process import start_operator

PLAN = "sync-bench"
KINDS = (("text", 0.45), ("scalar", 0.2), ("insert", 0.2), ("delete", 0.15))


@dataclass
class Change:
    key: int
    kind: str
    version: int
    committed: float
    visible: float | None = None
    superseded: bool = False
    """A later change of the same key was committed before this one was seen: it has no lag of its
    own (the collection never has to show it), and is left out of the figures."""


@dataclass
class Stream:
    changes: list[Change] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # the texts the text updates and inserts wrote
    lock: threading.Lock = field(default_factory=threading.Lock)


def write_table(path: Path, texts: list[str]) -> None:
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE articles (id INTEGER PRIMARY KEY, body TEXT NOT NULL, category TEXT NOT NULL,"
            " version INTEGER NOT NULL, deleted_at TEXT);"
            "CREATE INDEX articles_version ON articles (version);"
        )
        connection.executemany(
            "INSERT INTO articles VALUES (?, ?, ?, ?, NULL)",
            ((i, text, f"c{i % 10}", i) for i, text in enumerate(texts)),
        )


def documents(source: Path, alias: str, worker_cpus: str) -> list[dict[str, Any]]:
    group = "vectors.aios.dev/v1alpha1"
    fields = [{"name": "category", "type": "VARCHAR", "maxLength": 32}, {"name": "version", "type": "INT64"}]
    collection = {
        "collectionName": alias,
        "dimension": 384,
        "metricType": "COSINE",
        "index": {"type": "HNSW", "params": {"M": 16, "efConstruction": 100}},
        "searchParams": {"ef": 64},
        "fields": fields,
        "embedding": {"model": MODEL},
        "deletionPolicy": "Delete",
    }
    sql = {
        "urlSecretRef": {"name": "sync-bench-db", "key": "url"},
        "table": "articles",
        "primaryKey": "id",
        "textColumns": ["body"],
        "fields": {"category": "category", "version": "version"},
    }
    plan = {
        "targetRef": {"name": "sync-bench"},
        "source": {"sql": sql},
        "batching": {"podTemplate": {"resources": {"requests": {"cpu": worker_cpus}}}},
        "sync": {
            "mode": "Continuous",
            "changeColumn": "version",
            "deletes": {"softDeleteColumn": "deleted_at"},
        },
    }
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sync-bench-db"},
         "stringData": {"url": f"sqlite:///{source}"}},
        {"apiVersion": group, "kind": "VectorCollection", "metadata": {"name": "sync-bench"},
         "spec": collection},
        {"apiVersion": group, "kind": "MigrationPlan", "metadata": {"name": PLAN}, "spec": plan},
    ]  # fmt: skip


def status_of(cluster: RunningCluster, namespace: str) -> dict[str, Any]:
    done = cluster.kubectl("get", "migrationplan", PLAN, "-n", namespace, "-o", "json", check=False)
    return (json.loads(done.stdout).get("status") or {}) if done.returncode == 0 else {}


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := check()) is not None:
            return found
        time.sleep(2)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s")


def writer(
    source: Path, stream: Stream, rate: float, duration: float, first_key: int, stop: threading.Event
) -> None:
    """Commits ``rate`` changes per second (one transaction each) for ``duration`` seconds."""
    rng = random.Random(7)  # noqa: S311  (test data)
    fresh = iter(corpus(first_key + 20 * int(rate * duration + 10))[first_key:])
    live = list(range(first_key))
    next_key = first_key
    connection = sqlite3.connect(source, timeout=30)
    started = time.monotonic()
    sent = 0
    while not stop.is_set() and time.monotonic() - started < duration:
        due = started + sent / rate
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        version = first_key + 10 * duration * rate + sent  # above every version the table holds
        if kind == "insert":
            key, text = next_key, next(fresh)
            next_key += 1
            connection.execute("INSERT INTO articles VALUES (?, ?, 'new', ?, NULL)", (key, text, version))
            live.append(key)
        else:
            key = live.pop(rng.randrange(len(live))) if kind == "delete" else rng.choice(live)
            if kind == "text":
                text = next(fresh)
                connection.execute(
                    "UPDATE articles SET body = ?, version = ? WHERE id = ?", (text, version, key)
                )
            elif kind == "scalar":
                connection.execute(
                    "UPDATE articles SET category = 'moved', version = ? WHERE id = ?", (version, key)
                )
            else:
                connection.execute(
                    "UPDATE articles SET deleted_at = '2026-12-01', version = ? WHERE id = ?", (version, key)
                )
        connection.commit()
        with stream.lock:
            stream.changes.append(Change(key, kind, int(version), time.time()))
            if kind in ("text", "insert"):
                stream.texts.append(text)
        sent += 1
    connection.close()


def watch_visibility(uri: str, alias: str, stream: Stream, poll: float, stop: threading.Event) -> None:
    """Marks each change visible once Milvus holds its version (or no longer holds a deleted id)."""
    client = connect(uri)
    try:
        while not stop.is_set():
            with stream.lock:
                pending = [c for c in stream.changes if c.visible is None and not c.superseded]
            latest: dict[int, Change] = {}
            for change in pending:
                if (earlier := latest.get(change.key)) is not None:
                    earlier.superseded = True
                latest[change.key] = change
            pending = list(latest.values())
            keys = list(latest)
            seen = time.time()
            stored: dict[int, int] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows = client.query(alias, filter=f"id in {chunk}", output_fields=["id", "version"])
                stored.update({int(row["id"]): int(row["version"]) for row in rows})
            for change in pending:
                if change.kind == "delete":
                    if change.key not in stored:
                        change.visible = seen
                elif stored.get(change.key, -1) >= change.version:
                    change.visible = seen
            stop.wait(poll)
    finally:
        client.close()


def bare_encode_rate(texts: list[str], threads: int) -> float:
    import torch
    from sentence_transformers import SentenceTransformer

    from vector_operator.worker.model_loading import resolve_model

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(resolve_model(MODEL)), device="cpu", local_files_only=True)
    model.encode(["warm-up"] * 64, show_progress_bar=False)
    started = time.perf_counter()
    model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(cluster: RunningCluster, args: argparse.Namespace, scratch: Path) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    namespace = f"bench-sync-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    milvus_server = MilvusLiteServer(scratch / "milvus")
    milvus_server.start()
    log = scratch / "operator.log"
    operator = start_operator(cluster, namespace, milvus_server.uri, log, *host_worker_args())
    stop = threading.Event()
    try:
        texts = corpus(args.rows)
        source = scratch / "articles.db"
        write_table(source, texts)
        alias = f"sync_bench_{uuid.uuid4().hex[:6]}"
        manifest = "\n---\n".join(json.dumps(d) for d in documents(source, alias, args.worker_cpus))
        started = time.monotonic()
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)

        def syncing() -> dict[str, Any] | None:
            status = status_of(cluster, namespace)
            if status.get("phase") in ("Failed", "RolledBack"):
                raise RuntimeError(f"the plan ended {status.get('phase')}: {json.dumps(status)[:2000]}")
            in_sync = next((c for c in status.get("conditions", []) if c["type"] == "InSync"), {})
            return status if status.get("phase") == "Syncing" and in_sync.get("status") == "True" else None

        wait_for("the backfill and the catch-up", syncing, args.timeout)
        print(f"{args.rows} rows backfilled and in sync after {time.monotonic() - started:.0f}s")
        before = status_of(cluster, namespace)["sync"]

        stream = Stream()
        threads = [
            threading.Thread(target=writer, args=(source, stream, args.rate, args.duration, args.rows, stop)),
            threading.Thread(
                target=watch_visibility, args=(milvus_server.uri, alias, stream, args.poll, stop)
            ),
        ]
        for thread in threads:
            thread.start()
        threads[0].join()
        print(
            f"{len(stream.changes)} changes committed in {args.duration:.0f}s; waiting until all are visible"
        )
        deadline = time.monotonic() + args.timeout
        while (
            any(c.visible is None and not c.superseded for c in stream.changes)
            and time.monotonic() < deadline
        ):
            time.sleep(1)
        stop.set()
        threads[1].join()
        after = status_of(cluster, namespace)["sync"]

        lags = [c.visible - c.committed for c in stream.changes if c.visible is not None]
        superseded = sum(1 for c in stream.changes if c.superseded)
        missing = sum(1 for c in stream.changes if c.visible is None and not c.superseded)
        by_kind = {k: sum(1 for c in stream.changes if c.kind == k) for k, _ in KINDS}
        print(
            f"changes by kind: {by_kind}; superseded by a later change of their row before they were"
            f" seen: {superseded}; never visible: {missing}"
        )
        print(
            f"lag commit -> searchable: p50 {percentile(lags, 0.5):.1f}s, p95 {percentile(lags, 0.95):.1f}s,"
            f" max {max(lags):.1f}s (sync.interval 10s, polled every {args.poll}s)"
        )
        applied = (after["changesApplied"] - before["changesApplied"]) + (
            after["deletesApplied"] - before["deletesApplied"]
        )
        reembedded = after["reembedded"] - before["reembedded"]
        reused = after["reused"] - before["reused"]
        busy_after = (after["changesApplied"] + after["deletesApplied"]) / after["recordsPerSecond"]
        busy_before = (
            (before["changesApplied"] + before["deletesApplied"]) / before["recordsPerSecond"]
            if before.get("recordsPerSecond")
            else 0.0
        )
        busy = busy_after - busy_before
        threads_used = max(1, int(float(args.worker_cpus)))
        bare = bare_encode_rate(stream.texts, threads_used)
        print(
            f"sync applied {applied} rows ({reembedded} re-embedded, {reused} reused, "
            f"{after['deletesApplied'] - before['deletesApplied']} deleted) in {busy:.1f}s of passes:"
            f" {applied / busy:.1f} rows/s, re-embedded {reembedded / busy:.1f}/s; bare encode of the"
            f" {len(stream.texts)} changed texts with {threads_used} torch thread(s): {bare:.1f}/s"
        )
        print(f"sync/encode: {applied / busy / bare:.2f}")
        print(f"reembed/encode: {reembedded / busy / bare:.2f}")
        errors = [line for line in log.read_text(errors="replace").splitlines() if "[ERROR" in line]
        print(f"operator log: {len(errors)} ERROR lines ({log})")
        for line in errors[-5:]:
            print(f"  {line[:300]}")
    finally:
        stop.set()
        cluster.kubectl("delete", "migrationplan", PLAN, "-n", namespace, "--timeout=60s", check=False)
        cluster.kubectl(
            "delete", "vectorcollection", "sync-bench", "-n", namespace, "--timeout=60s", check=False
        )
        operator.shut_down(cluster, namespace)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        milvus_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of changes")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between visibility checks")
    parser.add_argument("--worker-cpus", default="2", help="the Jobs' and the sync worker's CPU request")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--keep-cluster", action="store_true")
    add_state_dir_argument(parser)
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.UTC)
    print(f"bench-sync {now:%Y-%m-%d %H:%M} UTC, Python {sys.version.split()[0]}")
    with (
        tempfile.TemporaryDirectory(prefix="vo-bench-sync-") as scratch,
        bench_cluster(args.state_dir, args.keep_cluster) as cluster,
    ):
        run(cluster, args, Path(scratch))


if __name__ == "__main__":
    main()
