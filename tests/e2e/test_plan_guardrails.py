"""MigrationPlans off the happy path, end to end through real Jobs: plans that cannot work end (or
wait) with a reason and change nothing; a batch that fails for good is re-run alone; one plan at a
time per collection, each with the target's spec as it was when it prepared; a finished plan is
quiet. What is checked is what a user checks: conditions, Events, Jobs, Milvus."""

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
    apply,
    condition,
    count,
    event_reasons,
    eventually,
    ids_in,
    phase_is,
    plan_status,
    quickstart,
)
from tests.polling import unique

from localcluster.cluster import Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]

PLAN = "articles-backfill"


def renamed(
    documents: list[dict[str, Any]], suffix: str, table: str, **plan_spec: Any
) -> list[dict[str, Any]]:
    """The quickstart's collection and plan as `articles-<suffix>` / `backfill-<suffix>` over `table`."""
    chosen = []
    for document in documents:
        document = json.loads(json.dumps(document))
        if document["kind"] == "VectorCollection":
            document["metadata"]["name"] = f"articles-{suffix}"
            document["spec"]["collectionName"] += f"_{suffix}"
        elif document["kind"] == "MigrationPlan":
            document["metadata"]["name"] = f"backfill-{suffix}"
            document["spec"]["targetRef"]["name"] = f"articles-{suffix}"
            document["spec"]["source"]["sql"]["table"] = table
            document["spec"].update(plan_spec)
        chosen.append(document)
    return chosen


def reaches(kubectl: Kubectl, plan: str, phase: str) -> Any:
    return lambda: (status := plan_status(kubectl, plan)).get("phase") == phase and status


def job_names_created(kubectl: Kubectl) -> set[str]:
    """The Jobs the job controller created pods for (its Events outlive the Jobs)."""
    listed = json.loads(kubectl("get", "events", "-o", "json").stdout)
    return {
        e["involvedObject"]["name"]
        for e in listed["items"]
        if e["involvedObject"]["kind"] == "Job" and e["reason"] == "SuccessfulCreate"
    }


def test_plans_that_cannot_work_end_or_wait_with_a_reason_and_change_nothing(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, source_db: Path
) -> None:
    with sqlite3.connect(source_db) as connection:
        connection.execute("CREATE TABLE empty_articles AS SELECT * FROM articles WHERE 0")
        connection.execute(
            "CREATE TABLE blank_articles AS SELECT id, NULL AS title, NULL AS body, category FROM articles"
        )
    alias = unique("guard")
    base = quickstart(source_db, alias)
    empty = renamed(base, "empty", "empty_articles")
    rogue = renamed(
        base, "rogue", "articles", batching={"podTemplate": {"image": "evil.example/miner:latest"}}
    )
    blank = renamed(base, "blank", "blank_articles", batching={"recordsPerJob": 50, "maxConcurrentJobs": 1})
    apply(kubectl, [*empty, *rogue[1:], *blank[1:]])

    ended = eventually(
        "the empty source ends the plan", reaches(kubectl, "backfill-empty", "Failed"), timeout=120
    )
    assert condition(ended, "Failed")["reason"] == "SourceEmpty"
    refused = eventually(
        "the rogue image is refused",
        lambda: (
            (c := condition(plan_status(kubectl, "backfill-rogue"), "Progressing")).get("reason")
            == "ImageNotAllowed"
            and c
        ),
        timeout=120,
    )
    assert (
        "evil.example/miner:latest is not an image this operator's installation allows" in refused["message"]
    )
    stopped = eventually(
        "the all-NULL source stops early", reaches(kubectl, "backfill-blank", "Failed"), timeout=240
    )
    failed = condition(stopped, "Failed")
    assert failed["reason"] == "NothingToEmbed"
    assert "the first 2 batches read 100 records and embedded none" in failed["message"]
    assert stopped["progress"]["skippedByReason"] == {"nullText": 100}
    assert stopped["progress"]["batchesTotal"] == 4  # it never ran the other two

    names = milvus.list_collections()
    for suffix in ("empty", "rogue", "blank"):  # every alias still serves its first collection
        collection = f"{alias}_{suffix}"
        assert milvus.describe_alias(collection)["collection_name"] == f"{collection}__v1"
    assert f"{alias}_empty__v2" not in names  # nothing was prepared for them
    assert f"{alias}_rogue__v2" not in names
    assert {name for name in job_names_created(kubectl) if "rogue" in name or "empty" in name} == set()
    assert plan_status(kubectl, "backfill-rogue")["phase"] == "Planning"


def test_a_failed_batch_is_retried_alone_and_the_finished_plan_is_quiet(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, source_db: Path
) -> None:
    broken = (
        "CREATE VIEW articles_view AS SELECT id, title, category,"
        " CASE WHEN id BETWEEN 51 AND 100 THEN abs(-9223372036854775808) ELSE body END AS body FROM articles"
    )
    with sqlite3.connect(source_db) as connection:
        connection.execute(broken)  # reading batch 1's texts fails: integer overflow
    alias = unique("retry")
    documents = quickstart(
        source_db, alias, batching={"recordsPerJob": 50, "maxConcurrentJobs": 2, "backoffLimit": 0}
    )
    for document in documents:
        if document["kind"] == "MigrationPlan":
            document["spec"]["source"]["sql"]["table"] = "articles_view"
    apply(kubectl, documents)

    failed = eventually("batch 1 fails for good, the others finish", phase_is(kubectl, "Failed"))
    assert failed["failedRanges"] == "1"
    assert failed["completedRanges"] == "0,2-3"  # the others were not doomed
    message = condition(failed, "Failed")["message"]
    assert condition(failed, "Failed")["reason"] == "BatchesFailed"
    assert "batches 1 failed for good" in message
    assert "integer overflow" in message
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"

    with sqlite3.connect(source_db) as connection:
        connection.execute("DROP VIEW articles_view")
        connection.execute("CREATE VIEW articles_view AS SELECT id, title, category, body FROM articles")
    kubectl("patch", "migrationplan", PLAN, "--type=merge", "-p", '{"spec":{"retry":1}}')
    status = eventually("the retry succeeds", phase_is(kubectl, "Succeeded"))
    # Right at Succeeded, the VectorCollection already shows what the alias serves, and its count.
    vcol = json.loads(kubectl("get", "vectorcollection", "articles", "-o", "json").stdout)["status"]
    assert (vcol["physicalCollection"], vcol["entityCount"]) == (f"{alias}__v2", ROWS)
    assert status["observedRetry"] == 1
    assert status["progress"]["recordsRead"] == status["progress"]["recordsDone"] == ROWS  # each batch once
    assert "Retrying" in event_reasons(kubectl, PLAN)
    names = job_names_created(kubectl)
    assert names == {f"{PLAN}-0", f"{PLAN}-1", f"{PLAN}-2", f"{PLAN}-3", f"{PLAN}-1-r1"}  # only batch 1 again
    ids = ids_in(milvus, alias)
    assert len(ids) == len(set(ids)) == ROWS

    # Finished: no status writes, no Events, nothing, however many ticks pass (--plan-interval 1).
    before = json.loads(kubectl("get", "migrationplan", PLAN, "-o", "json").stdout)["metadata"][
        "resourceVersion"
    ]
    events_before = len(event_reasons(kubectl, PLAN))
    time.sleep(8)
    after = json.loads(kubectl("get", "migrationplan", PLAN, "-o", "json").stdout)["metadata"][
        "resourceVersion"
    ]
    assert after == before
    assert len(event_reasons(kubectl, PLAN)) == events_before


def test_one_plan_at_a_time_each_with_the_target_spec_it_pinned(
    kubectl: Kubectl, migration_operator: OperatorProcess, milvus: MilvusClient, source_db: Path
) -> None:
    alias = unique("onebyone")
    documents = quickstart(source_db, alias, batching={"recordsPerJob": 50, "maxConcurrentJobs": 1})
    apply(kubectl, documents)
    eventually("the first plan runs", phase_is(kubectl, "Generating"), timeout=120)
    second = next(d for d in quickstart(source_db, alias) if d["kind"] == "MigrationPlan")
    second["metadata"]["name"] = "second-backfill"
    second["spec"]["quality"] = {"coherence": {"warning": 0.6, "critical": 0.5}}
    apply(kubectl, [second])
    waiting = eventually(
        "the second plan waits its turn",
        lambda: (
            (c := condition(plan_status(kubectl, "second-backfill"), "Progressing")).get("reason")
            == "TargetBusy"
            and c
        ),
        timeout=60,
    )
    assert f"MigrationPlan {PLAN}" in waiting["message"]
    # Editing the collection mid-run changes nothing for the running plan: it pinned the spec.
    kubectl(
        "patch",
        "vectorcollection",
        "articles",
        "--type=merge",
        "-p",
        '{"spec":{"embedding":{"maxSeqLength":16}}}',
    )
    first = eventually("the first plan succeeds", phase_is(kubectl, "Succeeded"))
    assert first["quality"]["coherence"]["mean"] >= 0.99  # full-length texts, as pinned
    assert plan_status(kubectl, "second-backfill")["phase"] in ("Planning", "Preparing", "Generating")

    second_done = eventually(
        "then the second plan runs, with the edited spec",
        reaches(kubectl, "second-backfill", "Succeeded"),
        timeout=300,
    )
    assert second_done["quality"]["coherence"]["mean"] < 0.85  # 16 tokens: the edit applies to it
    assert second_done["newPhysicalCollection"] == f"{alias}__v3"
    assert second_done["previousPhysicalCollection"] == f"{alias}__v2"
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v3"
    assert count(milvus, alias) == ROWS
