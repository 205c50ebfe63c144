"""RollbackPolicies end to end, on natural failures only: a speed setting that costs quality
(a shortened maxSeqLength), a source with bad rows, a latency bound after the cutover. Nothing is
injected: the workers measure, the operator decides, Milvus shows the outcome."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient
from tests.conftest import OperatorProcess
from tests.e2e.migration_support import (
    ROWS,
    QueryLoop,
    apply,
    condition,
    count,
    event_reasons,
    eventually,
    phase_is,
    plan_status,
    quickstart,
)
from tests.polling import unique

from localcluster.cluster import Kubectl
from localcluster.milvus_lite import MilvusLiteServer

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]

PLAN = "articles-backfill"


def policy(name: str, triggers: list[dict[str, Any]], actions: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "vectors.aios.dev/v1alpha1",
        "kind": "RollbackPolicy",
        "metadata": {"name": name},
        "spec": {"planNames": [PLAN], "triggers": triggers, "actions": actions, **spec},
    }


def with_collection(documents: list[dict[str, Any]], **embedding: Any) -> list[dict[str, Any]]:
    for document in documents:
        if document["kind"] == "VectorCollection":
            document["spec"]["embedding"].update(embedding)
    return documents


def policy_status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(kubectl("get", "rollbackpolicy", name, "-o", "json").stdout)
    return got.get("status") or {}


COHERENCE_GUARD = policy(
    "coherence-guard",
    [{"metric": "coherence", "below": 0.85, "forBatches": 2, "phases": ["Generating", "Validating"]}],
    ["Pause", "Abort", "RevertAlias", "DropPartialCollection"],
)


def test_a_quality_costing_speed_setting_is_rolled_back(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, source_db: Path
) -> None:
    alias = unique("short")
    documents = with_collection(quickstart(source_db, alias), maxSeqLength=16)
    apply(kubectl, [COHERENCE_GUARD, *documents])
    status = eventually("the policy rolls the plan back", phase_is(kubectl, "RolledBack"))

    rollback = status["rollback"]
    assert rollback["policy"] == "coherence-guard"
    assert rollback["completed"] is True
    assert rollback["metric"] == "coherence"
    assert 0.6 < rollback["observedValue"] < 0.85  # all-MiniLM-L6-v2 at 16 tokens: about 0.74
    assert [s["action"] for s in rollback["steps"]] == [
        "Pause",
        "Abort",
        "RevertAlias",
        "DropPartialCollection",
    ]
    steps = {s["action"]: s["result"] for s in rollback["steps"]}
    assert steps["DropPartialCollection"] == "Succeeded"
    assert steps["RevertAlias"] == "Skipped"  # no cutover happened: the alias never left v1
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"
    assert f"{alias}__v2" not in milvus.list_collections()
    rolled_back = condition(status, "RolledBack")
    assert rolled_back["status"] == "True"
    assert "coherence below 0.85 for 2 batches" in rolled_back["message"]

    recorded = policy_status(kubectl, "coherence-guard")
    assert recorded["triggerCount"] == 1
    (execution,) = recorded["executions"]
    assert execution["plan"] == PLAN
    assert execution["phase"] == "Generating"
    assert execution["observedValue"] == rollback["observedValue"]
    assert execution["threshold"] == 0.85
    assert "RolledBack" in event_reasons(kubectl, PLAN)
    assert "1" in kubectl("get", "rollbackpolicy", "coherence-guard").stdout  # the Triggers column
    # What the workers recommend reaches the plan, not only their (deleted) Jobs.
    assert any("maxSeqLength 16" in text for text in status["recommendations"]), status["recommendations"]
    assert "Recommendation" in event_reasons(kubectl, PLAN)


# all-MiniLM-L6-v2 on the quickstart's articles (measured): 16 tokens 0.74, 24 0.81, 32 0.87,
# 40 0.91, 48 0.95, 64 0.98 mean coherence against the full 256-token encoding.
@pytest.mark.parametrize(
    ("tokens", "degraded"),
    [(40, False), (32, True)],
    ids=["40-tokens-completes", "32-tokens-warns"],
)
def test_milder_settings_complete_and_warn_between_the_levels(
    kubectl: Kubectl,
    migration_operator: OperatorProcess,
    milvus: MilvusClient,
    source_db: Path,
    tokens: int,
    degraded: bool,
) -> None:
    alias = unique(f"seq{tokens}")
    documents = with_collection(quickstart(source_db, alias), maxSeqLength=tokens)
    apply(kubectl, [COHERENCE_GUARD, *documents])
    status = eventually("the plan succeeds", phase_is(kubectl, "Succeeded"))
    coherence = status["quality"]["coherence"]["mean"]
    assert coherence >= 0.85
    assert "rollback" not in status
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v2"
    quality = condition(status, "QualityDegraded")
    if degraded:
        assert coherence < 0.90
        assert quality["status"] == "True"
        assert "below the warning level 0.9" in quality["message"]
        assert "QualityDegraded" in event_reasons(kubectl, PLAN)
    else:
        assert coherence >= 0.90
        assert "coherence" not in quality.get("message", "")


def bad_rows_source(
    path: Path, bad_batches: set[int], rows_per_batch: int = 50, bad_per_batch: int = 8
) -> Path:
    """The quickstart's articles with the first `bad_per_batch` rows of each bad batch emptied
    (empty title and body: the worker skips them as emptyText)."""
    with sqlite3.connect(path) as connection:
        connection.executescript((Path(__file__).parents[2] / "examples/quickstart/articles.sql").read_text())
        for batch in bad_batches:
            first = batch * rows_per_batch + 1
            connection.execute(
                "UPDATE articles SET title = '', body = '' WHERE id BETWEEN ? AND ?",
                (first, first + bad_per_batch - 1),
            )
    return path


FAILURE_GUARD = policy(
    "failure-guard",
    [{"metric": "failureRate", "above": 0.05, "forBatches": 2, "phases": ["Generating"]}],
    ["Abort", "DropPartialCollection"],
)


def test_one_bad_batch_below_the_sustain_count_does_not_fire(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, tmp_path: Path
) -> None:
    alias = unique("onebad")
    source = bad_rows_source(tmp_path / "articles.db", bad_batches={1})
    documents = quickstart(source, alias, batching={"recordsPerJob": 50, "maxConcurrentJobs": 1})
    apply(kubectl, [FAILURE_GUARD, *documents])
    status = eventually("the plan succeeds", phase_is(kubectl, "Succeeded"))
    assert "rollback" not in status
    assert status["progress"]["skippedByReason"] == {"emptyText": 8}
    assert status["progress"]["recordsDone"] == ROWS - 8
    assert count(milvus, alias) == ROWS - 8
    assert policy_status(kubectl, "failure-guard").get("triggerCount", 0) == 0


def test_a_sustained_failure_rate_fires_the_policy(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, tmp_path: Path
) -> None:
    alias = unique("twobad")
    source = bad_rows_source(tmp_path / "articles.db", bad_batches={1, 2})
    documents = quickstart(source, alias, batching={"recordsPerJob": 50, "maxConcurrentJobs": 1})
    apply(kubectl, [FAILURE_GUARD, *documents])
    status = eventually("the policy rolls the plan back", phase_is(kubectl, "RolledBack"))
    rollback = status["rollback"]
    assert rollback["metric"] == "failureRate"
    assert rollback["observedValue"] == pytest.approx(8 / 50)
    assert f"{alias}__v2" not in milvus.list_collections()
    assert status["progress"]["batchesSucceeded"] == 3  # stopped before the last batch
    assert policy_status(kubectl, "failure-guard")["triggerCount"] == 1


def test_a_post_cutover_trigger_reverts_the_alias_without_a_failed_query(
    kubectl: Kubectl,
    migration_operator: OperatorProcess,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    source_db: Path,
) -> None:
    alias = unique("post")
    latency_guard = policy(
        "latency-guard",
        [{"metric": "searchLatencyP95Ms", "above": 0.001, "phases": ["PostCutover"]}],
        ["RevertAlias"],
        postCutoverWindow="10m",
    )
    documents = quickstart(source_db, alias, batching={"recordsPerJob": 100, "maxConcurrentJobs": 2})
    apply(kubectl, [d for d in documents if d["kind"] != "MigrationPlan"])
    kubectl("wait", "--for=condition=Ready", "vectorcollection/articles", "--timeout=90s")
    with QueryLoop(milvus_server.uri, alias) as queries:
        apply(kubectl, [latency_guard, *[d for d in documents if d["kind"] == "MigrationPlan"]])
        eventually("the plan cuts over", phase_is(kubectl, "Succeeded", "RolledBack"))
        status = eventually(
            "the canary latency reverts the alias", phase_is(kubectl, "RolledBack"), timeout=120
        )
    assert queries.failures == []
    assert queries.queries > 20
    assert status["rollback"]["phase"] == "PostCutover"
    assert status["rollback"]["steps"] == [
        {"action": "RevertAlias", "result": "Succeeded", "message": f"alias {alias} serves {alias}__v1 again"}
    ]
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"
    assert f"{alias}__v2" in milvus.list_collections()  # kept: RevertAlias only
    vcol = json.loads(kubectl("get", "vectorcollection", "articles", "-o", "json").stdout)["status"]
    assert vcol["physicalCollection"] == f"{alias}__v1"


def test_a_finished_plan_can_be_rolled_back_by_hand(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, source_db: Path
) -> None:
    alias = unique("byhand")
    apply(kubectl, quickstart(source_db, alias, batching={"recordsPerJob": 100, "maxConcurrentJobs": 2}))
    eventually("the plan succeeds", phase_is(kubectl, "Succeeded"))
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v2"

    kubectl("patch", "migrationplan", PLAN, "--type=merge", "-p", '{"spec":{"rollback":true}}')
    status = eventually("the plan is rolled back", phase_is(kubectl, "RolledBack"), timeout=60)
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"
    assert status["rollback"]["policy"] == "manual"
    assert condition(status, "RolledBack")["reason"] == "RollbackRequested"
    assert plan_status(kubectl)["phase"] == "RolledBack"


def test_a_pause_only_policy_pauses_in_status_once_and_is_armed_again_when_a_human_resumes(
    kubectl: Kubectl, migration_operator: OperatorProcess, source_db: Path
) -> None:
    alias = unique("pauseonly")
    pause_guard = policy(
        "pause-guard", [{"metric": "coherence", "below": 0.85, "phases": ["Generating"]}], ["Pause"]
    )
    documents = with_collection(
        quickstart(source_db, alias, batching={"recordsPerJob": 50, "maxConcurrentJobs": 1}), maxSeqLength=16
    )
    apply(kubectl, [pause_guard, *documents])
    status = eventually("the policy pauses the plan", phase_is(kubectl, "Paused"))
    assert status["rollback"]["steps"][0]["action"] == "Pause"
    assert status["pause"]["by"] == "RollbackPolicy/pause-guard"
    # The operator's own decision is in status: a GitOps tool owning the spec has nothing to undo.
    spec = json.loads(kubectl("get", "migrationplan", PLAN, "-o", "json").stdout)["spec"]
    assert spec["paused"] is False
    time.sleep(6)  # several ticks later: still one execution, still paused
    assert policy_status(kubectl, "pause-guard")["triggerCount"] == 1
    assert plan_status(kubectl)["phase"] == "Paused"
    assert "RollbackPaused" in event_reasons(kubectl, PLAN)

    # A human resumes by removing the operator's pause: the policy guards the next batches again.
    kubectl(
        "patch",
        "migrationplan",
        PLAN,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"pause":null}}',
    )
    eventually(
        "the re-armed policy fires on the next batch",
        lambda: policy_status(kubectl, "pause-guard").get("triggerCount") == 2,
        timeout=240,
    )
    status = eventually("paused again", phase_is(kubectl, "Paused"))
    assert status["rollback"].get("resumedAt") is None  # a new execution, not the first one again
    assert "PoliciesArmed" in event_reasons(kubectl, PLAN)
