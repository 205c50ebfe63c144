"""The MigrationPlan controller's pure decisions: batches, compact ranges, Job manifests, the
worker's assignment and folding results into status."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from vector_operator.api.migrationplan import MigrationPlanSpec
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.migration import compact_ranges
from vector_operator.migration.assignments import UnsupportedSource, batch_assignment
from vector_operator.migration.batch_jobs import JobSettings, SecretEnv, batch_job, job_name, plan_label_value
from vector_operator.migration.batch_plan import BatchPlan, plan_batches
from vector_operator.migration.progress import fold_success, next_batches, with_failure
from vector_operator.worker.result import WorkerResult


def test_batches_hold_records_per_batch_rows_whatever_the_key_distribution() -> None:
    keys = sorted(random.Random(3).sample(range(10**9), 1003))  # sparse, skewed ids
    plan = plan_batches(iter(keys), 100)
    assert plan.records_total == 1003
    assert plan.batches == 11
    sizes = []
    for index in range(plan.batches):
        start, end = plan.key_range(index)
        sizes.append(sum(1 for k in keys if (start is None or k >= start) and (end is None or k < end)))
    assert sizes == [100] * 10 + [3]
    assert plan.key_range(0)[0] is None  # open ends: rows added later are still covered
    assert plan.key_range(10)[1] is None


def test_text_keys_and_empty_sources_plan_too() -> None:
    plan = plan_batches(iter(["a", "b", "c", "d", "e"]), 2)
    assert [plan.key_range(i) for i in range(plan.batches)] == [(None, "c"), ("c", "e"), ("e", None)]
    empty = plan_batches(iter([]), 10)
    assert empty.batches == 0
    with pytest.raises(IndexError):
        empty.key_range(0)


def test_the_batch_plan_survives_its_configmap_encoding_compactly() -> None:
    plan = plan_batches(iter(range(0, 2_000_000, 2)), 10)  # 100,000 batches
    assert plan.batches == 100_000
    encoded = plan.encode()
    assert len(encoded) < 1_000_000  # fits a ConfigMap (1 MiB)
    assert BatchPlan.decode(encoded) == plan


def test_compact_ranges_stay_small_and_exact() -> None:
    text = compact_ranges.add(None, [0, 1, 2, 5, 7, 6, 9])
    assert text == "0-2,5-7,9"
    assert compact_ranges.add(text, [3, 4, 8]) == "0-9"
    assert compact_ranges.count("0-2,5-7,9") == 7
    assert compact_ranges.contains("0-2,5-7,9", 6)
    assert not compact_ranges.contains("0-2,5-7,9", 8)
    assert compact_ranges.render(range(100_000)) == "0-99999"
    assert list(compact_ranges.members("3,5-6")) == [3, 5, 6]


def test_next_batches_respect_concurrency_and_skip_done_running_and_failed() -> None:
    assert next_batches(10, "0-2", running={3}, failed={4}, max_concurrent=3) == [5, 6]
    assert next_batches(10, "0-9", running=set(), failed=set(), max_concurrent=3) == []
    assert next_batches(10, None, running={0, 1, 2}, failed=set(), max_concurrent=3) == []


def test_job_names_are_deterministic_and_valid_labels() -> None:
    assert job_name("nodes-backfill", 7) == "nodes-backfill-7"
    long = "a" * 80
    name = job_name(long, 12345)
    assert len(name) <= 63
    assert name.endswith("-12345")
    assert name == job_name(long, 12345)
    assert job_name("b" * 80, 12345) != name
    assert len(plan_label_value(long)) <= 63


PLAN = MigrationPlanSpec.model_validate(
    {
        "targetRef": {"name": "articles"},
        "source": {
            "sql": {
                "urlSecretRef": {"name": "db", "key": "url"},
                "table": "articles",
                "primaryKey": "id",
                "textColumns": ["title", "body"],
                "fields": {"category": "category"},
            }
        },
        "batching": {"podTemplate": {"resources": {"requests": {"cpu": "2"}}, "nodeSelector": {"gpu": "no"}}},
    }
)
COLLECTION = VectorCollectionSpec.model_validate(
    {
        "collectionName": "articles",
        "dimension": 384,
        "metricType": "COSINE",
        "index": {"type": "HNSW", "params": {"M": 16, "efConstruction": 100}},
        "searchParams": {"ef": 64},
        "milvus": {"secretRef": {"name": "milvus-auth", "key": "token"}},
        "fields": [{"name": "category", "type": "VARCHAR", "maxLength": 64}],
        "embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2", "maxSeqLength": 128},
    }
)


def test_the_assignment_names_credentials_by_variable_and_carries_the_key_range() -> None:
    assignment = batch_assignment(
        namespace="search",
        plan="backfill",
        index=3,
        plan_spec=PLAN,
        collection_spec=COLLECTION,
        milvus_uri="http://milvus:19530",
        physical="articles__v2",
        key_range=(150, 200),
    )
    assert assignment["keyRange"] == {"start": 150, "end": 200}
    assert assignment["collection"]["name"] == "articles__v2"
    assert assignment["source"]["sql"]["urlEnv"] == "VO_SOURCE_URL"
    assert assignment["milvus"]["tokenEnv"] == "VO_MILVUS_TOKEN"
    assert assignment["model"]["maxSeqLength"] == 128
    files_plan = PLAN.model_copy(
        update={"source": PLAN.source.model_copy(update={"sql": None, "files": object()})}
    )
    with pytest.raises(UnsupportedSource, match=r"use source\.sql"):
        batch_assignment(
            namespace="s", plan="p", index=0, plan_spec=files_plan, collection_spec=COLLECTION,
            milvus_uri="http://m:1", physical="a__v2", key_range=(None, None),
        )  # fmt: skip


def test_the_job_is_restricted_owned_and_keeps_secrets_out_of_its_spec() -> None:
    job = batch_job(
        plan="backfill",
        plan_uid="uid-1",
        index=3,
        assignment={"keyRange": {"start": 1}},
        secrets=[SecretEnv("VO_SOURCE_URL", "db", "url")],
        settings=JobSettings(image="registry/vector-operator:1", command=("vector-operator", "worker")),
        overrides=PLAN.batching.pod_template,
    )
    assert job["metadata"]["name"] == "backfill-3"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("MigrationPlan", "uid-1", True)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"] == {"requests": {"cpu": "2"}}
    assert pod["nodeSelector"] == {"gpu": "no"}
    env = {e["name"]: e for e in container["env"]}
    assert env["VO_SOURCE_URL"]["valueFrom"] == {"secretKeyRef": {"name": "db", "key": "url"}}
    assert json.loads(env["VO_ASSIGNMENT"]["value"]) == {"keyRange": {"start": 1}}
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def result(read: int, upserted: int, skipped: dict[str, int], mean: float, sampled: int) -> WorkerResult:
    document: dict[str, Any] = {
        "status": "Succeeded",
        "reason": "Completed",
        "records": {"read": read, "embedded": upserted, "upserted": upserted, "skipped": skipped},
        "timings": {"batchP95Ms": 80.0},
        "batchSizes": {"count": 3, "last": 64},
        "quality": {
            "sampled": sampled,
            "coherence": {"min": mean - 0.01, "mean": mean, "max": mean + 0.005},
            "retrievability": 1.0,
        },
    }
    return WorkerResult.model_validate(document)


def test_folding_results_adds_counts_once_and_weights_quality_by_sample() -> None:
    status: dict[str, Any] = {}
    status.update(fold_success(status, 0, result(100, 98, {"emptyText": 2}, 0.99, 20)))
    status.update(fold_success(status, 1, result(100, 100, {}, 0.95, 60)))
    progress, quality = status["progress"], status["quality"]
    assert progress["recordsRead"] == 200
    assert progress["recordsDone"] == 198
    assert progress["recordsSkipped"] == 2
    assert progress["skippedByReason"] == {"emptyText": 2}
    assert status["completedRanges"] == "0-1"
    assert quality["coherence"]["mean"] == pytest.approx((0.99 * 20 + 0.95 * 60) / 80)
    assert quality["coherence"]["min"] == pytest.approx(0.94)
    assert quality["failureRate"] == pytest.approx(0.01)
    assert quality["sampledRecords"] == 80


def test_recent_failures_are_bounded_and_not_repeated() -> None:
    status: dict[str, Any] = {}
    for batch in range(30):
        status["recentFailures"] = with_failure(
            status, {"batch": batch, "reason": "BatchFailed", "message": "x"}
        )
    assert len(status["recentFailures"]) == 20
    assert status["recentFailures"][-1]["batch"] == 29
    again = with_failure(status, {"batch": 29, "reason": "BatchFailed", "message": "x"})
    assert len(again) == 20
