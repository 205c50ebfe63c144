"""MigrationPlans end to end: the real API server, controller-manager, scheduler and node agent run
the embedding Jobs (`vector-operator worker` as host processes), the operator drives the phases,
Milvus Lite stores the vectors, SQLite is the source. What is checked is what a user checks:
`kubectl get`, Events, counts and ids in Milvus, and queries on the alias that never fail.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from tests.conftest import OperatorProcess, PostgresServer
from tests.e2e.migration_support import (
    QUICKSTART,
    ROWS,
    QueryLoop,
    apply,
    condition,
    count,
    event_reasons,
    eventually,
    ids_in,
    phase_is,
    plan_status,
    quickstart,
    run_operator,
)
from tests.polling import unique

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.ports import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]


def test_the_quickstart_migrates_every_row_with_zero_failed_queries(
    kubectl: Kubectl,
    migration_operator: OperatorProcess,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    source_db: Path,
) -> None:
    # The Job pods must pass the "restricted" Pod Security Standard, or no pod is ever created.
    kubectl("label", "namespace", kubectl.namespace or "", "pod-security.kubernetes.io/enforce=restricted")
    alias = unique("articles")
    documents = quickstart(source_db, alias, batching=None)  # as shipped: auto sizing
    apply(kubectl, [d for d in documents if d["kind"] != "MigrationPlan"])
    kubectl("wait", "--for=condition=Ready", "vectorcollection/articles", "--timeout=90s")

    with QueryLoop(milvus_server.uri, alias) as queries:
        apply(kubectl, [d for d in documents if d["kind"] == "MigrationPlan"])
        status = eventually("the plan succeeds", phase_is(kubectl, "Succeeded"))
        time.sleep(1)  # a few queries after the cutover too
    assert queries.failures == []
    assert queries.queries > 20

    progress = status["progress"]
    assert progress["batchesTotal"] == 1  # auto: a second Job would cost more start-up than it saves
    assert progress["summary"] == "1/1"
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
    assert "1/1" in columns
    assert "estimated, nothing measured yet" in status["sizing"]["basis"]
    expected = {
        "Planned",
        "CollectionCreated",
        "Generating",
        "Generated",
        "Validated",
        "CutOver",
        "Succeeded",
    }
    # Kopf posts Events from a queue of its own: wait for every one rather than read them once
    missing: set[str] = set()

    def all_posted() -> bool:
        missing.clear()
        missing.update(expected - set(event_reasons(kubectl, "articles-backfill")))
        return not missing

    try:
        eventually("every phase's Event is posted", all_posted, timeout=60)
    except AssertionError as error:
        raise AssertionError(f"{error}; missing: {sorted(missing)}") from None
    # a newcomer's first run raises no alarm: one Job of one thread leaves a core to Milvus
    assert event_reasons(kubectl, "articles-backfill", "Warning") == []
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
        client = server.client()
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


def test_pods_that_cannot_be_scheduled_surface_with_the_schedulers_message(
    kubectl: Kubectl, migration_operator: OperatorProcess, source_db: Path
) -> None:
    alias = unique("gpu")
    pod_template = {"resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}
    batching = {"recordsPerJob": 100, "maxConcurrentJobs": 1, "podTemplate": pod_template}
    apply(kubectl, quickstart(source_db, alias, batching=batching))
    progressing = eventually(
        "Progressing says the pods cannot be scheduled",
        lambda: (c := condition(plan_status(kubectl), "Progressing")).get("reason") == "Unschedulable" and c,
        timeout=180,
    )
    assert progressing["status"] == "False"
    assert "cannot be scheduled" in progressing["message"]
    assert "Insufficient nvidia.com/gpu" in progressing["message"]  # the scheduler's own words


def test_in_place_upserts_into_the_serving_collection(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, source_db: Path
) -> None:
    alias = unique("inplace")
    apply(
        kubectl,
        quickstart(
            source_db,
            alias,
            mode="InPlace",
            backup={"skip": True},
            batching={"recordsPerJob": 100, "maxConcurrentJobs": 2},
        ),
    )
    status = eventually("the plan succeeds", phase_is(kubectl, "Succeeded"))
    assert status["newPhysicalCollection"] == status["previousPhysicalCollection"] == f"{alias}__v1"
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"
    assert [n for n in milvus.list_collections() if n.startswith(alias)] == [f"{alias}__v1"]
    assert count(milvus, alias) == ROWS

    # The vector space changes: InPlace cannot follow, and says what to do instead.
    kubectl("delete", "migrationplan", "articles-backfill", "--timeout=60s")
    kubectl("patch", "vectorcollection", "articles", "--type=merge", "-p", '{"spec":{"metricType":"IP"}}')
    eventually(
        "the collection asks for a migration",
        lambda: (
            "MigrationRequired"
            in kubectl(
                "get", "vectorcollection", "articles", "-o", "jsonpath={.status.conditions[*].reason}"
            ).stdout
        ),
        timeout=60,
    )
    plan = [
        d
        for d in quickstart(source_db, alias, mode="InPlace", backup={"skip": True})
        if d["kind"] == "MigrationPlan"
    ]
    apply(kubectl, plan)
    progressing = eventually(
        "InPlace refuses",
        lambda: (
            (c := condition(plan_status(kubectl), "Progressing")).get("reason") == "InPlaceCannotMigrate"
            and c
        ),
        timeout=90,
    )
    assert "metricType COSINE -> IP" in progressing["message"]
    assert "use mode: BlueGreen" in progressing["message"]


def test_a_postgresql_source_migrates_exactly(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, postgres: PostgresServer
) -> None:
    import sqlalchemy as sa

    schema = unique("e2e")
    engine = sa.create_engine(postgres.url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
            connection.exec_driver_sql(f"SET search_path TO {schema}")
            connection.exec_driver_sql((QUICKSTART / "articles.sql").read_text())
    finally:
        engine.dispose()
    alias = unique("pg")
    documents = quickstart(Path("/unused"), alias, batching={"recordsPerJob": 64, "maxConcurrentJobs": 2})
    for document in documents:
        if document["kind"] == "Secret":
            document["stringData"]["url"] = postgres.url
        if document["kind"] == "MigrationPlan":
            document["spec"]["source"]["sql"]["table"] = f"{schema}.articles"
    apply(kubectl, documents)
    status = eventually("the plan succeeds", phase_is(kubectl, "Succeeded"))
    assert status["progress"]["batchesTotal"] == 4  # 64 + 64 + 64 + 8 rows
    assert status["progress"]["recordsRead"] == ROWS
    assert count(milvus, alias) == ROWS
    ids = ids_in(milvus, alias)
    assert len(ids) == len(set(ids)) == ROWS
    # The URL in the Secret carries a password: it appears nowhere a user or an SRE reads.
    described = kubectl("describe", "migrationplan", "articles-backfill").stdout
    assert postgres.password not in described
    assert postgres.password not in migration_operator.log_text()
