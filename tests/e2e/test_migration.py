"""MigrationPlans end to end: the real API server, controller-manager, scheduler and node agent run
the embedding Jobs (`vector-operator worker` as host processes), the operator drives the phases,
Milvus Lite stores the vectors, SQLite is the source. What is checked is what a user checks:
`kubectl get`, Events, counts and ids in Milvus, and queries on the alias that never fail.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from pymilvus import MilvusClient
from tests.conftest import REPO_ROOT, OperatorProcess, start_operator

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.ports import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]

T = TypeVar("T")
QUICKSTART = REPO_ROOT / "examples" / "quickstart"
WORKER = f"{sys.executable} -m vector_operator.cli worker"
ROWS = 200


def eventually(what: str, check: Callable[[], T | None], timeout: float = 300) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting until {what} (last: {last!r})")


@pytest.fixture
def source_db(tmp_path: Path) -> Path:
    """The quickstart's 200 articles in a SQLite file the worker processes read."""
    path = tmp_path / "articles.db"
    with sqlite3.connect(path) as connection:
        connection.executescript((QUICKSTART / "articles.sql").read_text())
    return path


def quickstart(source: Path, alias: str, **plan_spec: Any) -> list[dict[str, Any]]:
    """The quickstart's Secret, VectorCollection and MigrationPlan, pointed at `source`."""
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


def phase_is(kubectl: Kubectl, *phases: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        status = plan_status(kubectl)
        if status.get("phase") in ("Failed", "RolledBack") and status.get("phase") not in phases:
            raise AssertionError(f"the plan ended {status.get('phase')}: {json.dumps(status)[:3000]}")
        return status if status.get("phase") in phases else None

    return check


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def event_reasons(kubectl: Kubectl, name: str) -> list[str]:
    listed = json.loads(
        kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout
    )
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

    def __init__(self, uri: str, alias: str) -> None:
        self.client = MilvusClient(uri=uri)
        self.alias = alias
        self.queries = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        vector = [1.0 / 384**0.5] * 384
        while not self._stop.is_set():
            try:
                self.client.search(self.alias, data=[vector], limit=3, search_params={"params": {"ef": 64}})
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


@pytest.fixture
def milvus(milvus_server: MilvusLiteServer) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=milvus_server.uri)
    try:
        yield client
    finally:
        client.close()


def run_operator(cluster: RunningCluster, namespace: str, uri: str, log: Path) -> OperatorProcess:
    return start_operator(cluster, namespace, uri, log, "--plan-interval", "1", "--worker-command", WORKER)


@pytest.fixture
def migration_operator(
    cluster: RunningCluster, crds: None, namespace: str, milvus_server: MilvusLiteServer, tmp_path: Path
) -> Iterator[OperatorProcess]:
    running = run_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator.log")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            for plural in ("migrationplans", "vectorcollections"):
                cluster.kubectl(
                    "delete", plural, "--all", "--namespace", namespace, "--timeout=90s", check=False
                )
        running.stop()


def unique(prefix: str) -> str:
    return f"{prefix}_{time.time_ns() % 10**9}"


def test_the_quickstart_migrates_every_row_with_zero_failed_queries(
    kubectl: Kubectl,
    migration_operator: OperatorProcess,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    source_db: Path,
) -> None:
    alias = unique("articles")
    documents = quickstart(source_db, alias)
    apply(kubectl, [d for d in documents if d["kind"] != "MigrationPlan"])
    kubectl("wait", "--for=condition=Ready", "vectorcollection/articles", "--timeout=90s")

    with QueryLoop(milvus_server.uri, alias) as queries:
        apply(kubectl, [d for d in documents if d["kind"] == "MigrationPlan"])
        status = eventually("the plan succeeds", phase_is(kubectl, "Succeeded"))
        time.sleep(1)  # a few queries after the cutover too
    assert queries.failures == []
    assert queries.queries > 20

    progress = status["progress"]
    assert progress["batchesTotal"] == 4
    assert progress["summary"] == "4/4"
    assert progress["recordsRead"] == ROWS
    assert progress["recordsDone"] + progress["recordsSkipped"] == progress["recordsRead"]
    new = status["newPhysicalCollection"]
    assert new == f"{alias}__v2"
    assert status["previousPhysicalCollection"] == f"{alias}__v1"
    assert milvus.describe_alias(alias)["collection_name"] == new
    assert count(milvus, alias) == progress["recordsDone"] == ROWS
    ids = ids_in(milvus, alias)
    assert len(ids) == len(set(ids)) == ROWS
    assert status["quality"]["coherence"]["mean"] >= 0.99
    assert status["quality"]["recallAtK"] >= 0.9
    assert condition(status, "Complete")["status"] == "True"

    columns = kubectl("get", "migrationplan", "articles-backfill").stdout
    assert "Succeeded" in columns
    assert "4/4" in columns
    reasons = event_reasons(kubectl, "articles-backfill")
    for reason in (
        "Planned",
        "CollectionCreated",
        "Generating",
        "Generated",
        "Validated",
        "CutOver",
        "Succeeded",
    ):
        assert reason in reasons
    vcol = json.loads(kubectl("get", "vectorcollection", "articles", "-o", "json").stdout)["status"]
    assert vcol["physicalCollection"] == new
    eventually(
        "the collection counts the rows",
        lambda: (
            json.loads(kubectl("get", "vectorcollection", "articles", "-o", "json").stdout)["status"].get(
                "entityCount"
            )
            == ROWS
        ),
        timeout=60,
    )


def test_an_operator_killed_while_generating_resumes_without_gaps_or_duplicates(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    source_db: Path,
    tmp_path: Path,
) -> None:
    alias = unique("restart")
    operator = run_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator-1.log")
    documents = quickstart(source_db, alias, batching={"recordsPerJob": 25, "maxConcurrentJobs": 1})
    try:
        apply(kubectl, documents)
        eventually(
            "some batches are done",
            lambda: (plan_status(kubectl).get("progress") or {}).get("batchesSucceeded", 0) >= 2,
        )
        operator.stop(signal.SIGKILL)
        time.sleep(3)  # a Job may finish while no operator runs
        operator = run_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator-2.log")
        status = eventually("the plan succeeds after the restart", phase_is(kubectl, "Succeeded"))
        assert status["progress"]["batchesTotal"] == 8
        assert status["completedRanges"] == "0-7"
        assert status["progress"]["recordsRead"] == ROWS  # each batch counted once
        assert status["progress"]["recordsDone"] == ROWS
        ids = ids_in(milvus, alias)
        assert len(ids) == len(set(ids)) == ROWS
        assert "Initial authentication has finished" in operator.log_text()
    finally:
        kubectl("delete", "migrationplans,vectorcollections", "--all", "--timeout=90s", check=False)
        operator.stop()


def test_manual_approval_pause_and_manual_cutover_wait_for_a_human(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, source_db: Path
) -> None:
    alias = unique("manual")
    documents = quickstart(
        source_db,
        alias,
        approval="Manual",
        cutover="Manual",
        batching={"recordsPerJob": 50, "maxConcurrentJobs": 1},
    )
    apply(kubectl, documents)
    status = eventually(
        "the plan waits for approval",
        lambda: (
            (s := plan_status(kubectl)).get("phase") == "Planning"
            and condition(s, "Approved").get("reason") == "AwaitingApproval"
            and s
        ),
        timeout=120,
    )
    assert "4 batches, 200 records planned" in condition(status, "Approved")["message"]
    time.sleep(3)
    assert plan_status(kubectl)["phase"] == "Planning"  # still waiting
    assert kubectl("get", "jobs", "-o", "name").stdout.strip() == ""

    kubectl(
        "patch",
        "migrationplan",
        "articles-backfill",
        "--type=merge",
        "-p",
        '{"spec":{"approved":true,"paused":true}}',
    )
    eventually("the plan pauses", phase_is(kubectl, "Paused"), timeout=180)
    paused_at = plan_status(kubectl)["progress"]["batchesSucceeded"]
    time.sleep(8)
    assert plan_status(kubectl)["phase"] == "Paused"
    assert plan_status(kubectl)["progress"]["batchesSucceeded"] <= paused_at + 1  # a running Job may finish

    kubectl("patch", "migrationplan", "articles-backfill", "--type=merge", "-p", '{"spec":{"paused":false}}')
    status = eventually(
        "validated, waiting for cutover approval",
        lambda: (
            (s := plan_status(kubectl)).get("phase") == "CuttingOver"
            and condition(s, "Progressing").get("reason") == "AwaitingCutoverApproval"
            and s
        ),
    )
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"  # not swung yet
    assert "Resumed" in event_reasons(kubectl, "articles-backfill")

    kubectl(
        "patch",
        "migrationplan",
        "articles-backfill",
        "--type=merge",
        "-p",
        '{"spec":{"cutoverApproved":true}}',
    )
    eventually("the plan succeeds", phase_is(kubectl, "Succeeded"), timeout=60)
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v2"
    assert count(milvus, alias) == ROWS


def test_a_worker_that_loses_milvus_is_retried_and_the_plan_still_finishes_exactly(
    cluster: RunningCluster, crds: None, kubectl: Kubectl, namespace: str, source_db: Path, tmp_path: Path
) -> None:
    server = MilvusLiteServer(tmp_path / "milvus", port=free_port())
    server.start()
    operator = run_operator(cluster, namespace, server.uri, tmp_path / "operator.log")
    alias = unique("outage")
    try:
        apply(kubectl, quickstart(source_db, alias, batching={"recordsPerJob": 50, "maxConcurrentJobs": 2}))
        eventually(
            "the first Jobs run",
            lambda: "Running" in kubectl("get", "pods", "-o", "jsonpath={.items[*].status.phase}").stdout,
            timeout=180,
        )
        server.stop()
        time.sleep(6)
        server.start()
        status = eventually("the plan succeeds", phase_is(kubectl, "Succeeded"), timeout=400)
        client = MilvusClient(uri=server.uri)
        try:
            assert count(client, alias) == ROWS
            ids = ids_in(client, alias)
            assert len(ids) == len(set(ids)) == ROWS
        finally:
            client.close()
        assert status["progress"]["recordsDone"] == ROWS
    finally:
        kubectl("delete", "migrationplans,vectorcollections", "--all", "--timeout=90s", check=False)
        operator.stop()
        server.stop()


def test_deleting_a_plan_mid_run_stops_its_jobs_and_drops_the_partial_collection(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, source_db: Path
) -> None:
    alias = unique("abandoned")
    apply(kubectl, quickstart(source_db, alias, batching={"recordsPerJob": 25, "maxConcurrentJobs": 1}))
    status = eventually("Jobs run", lambda: (s := plan_status(kubectl)).get("phase") == "Generating" and s)
    partial = status["newPhysicalCollection"]
    assert partial in milvus.list_collections()

    kubectl("delete", "migrationplan", "articles-backfill", "--timeout=90s")
    eventually(
        "its Jobs are gone", lambda: kubectl("get", "jobs", "-o", "name").stdout.strip() == "", timeout=120
    )
    assert partial not in milvus.list_collections()
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"
