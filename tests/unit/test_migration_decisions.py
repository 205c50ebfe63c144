"""The MigrationPlan controller's pure decisions: batches, compact ranges, Job manifests, the
worker's assignment and folding results into status."""

from __future__ import annotations

import datetime
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from vector_operator.api.kubernetes_types import SecretKeyReference
from vector_operator.api.migrationplan import MigrationPlanSpec, MigrationPlanStatus
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.contract.result import WorkerResult
from vector_operator.migration import compact_ranges
from vector_operator.migration.assignments import batch_assignment
from vector_operator.migration.batch_jobs import (
    MILVUS_CA_FILE,
    JobSettings,
    SecretEnv,
    batch_job,
    job_name,
    plan_label_value,
)
from vector_operator.migration.batch_plan import BatchPlan, KeyNotUnique, plan_batches
from vector_operator.migration.compact_ranges import lowest_missing
from vector_operator.migration.progress import fold_failure, fold_success


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


def test_next_batches_skip_done_failed_and_running_within_the_room_left() -> None:
    assert lowest_missing(("0-3", None), 10, {4}, wanted=2) == [5, 6]
    assert lowest_missing(("0-9", None), 10, set(), wanted=3) == []
    assert lowest_missing(("0-2", None), 10, set(), wanted=0) == []
    assert lowest_missing(("0-2,5", "3,7-8"), 10, {4}, wanted=5) == [6, 9]
    assert lowest_missing(("2-4,3-6", "1"), 10, set(), wanted=3) == [0, 7, 8]  # overlaps
    assert lowest_missing((None, None), 3, set(), wanted=5) == [0, 1, 2]


def test_next_batches_cost_nothing_like_the_batches_done() -> None:
    # 99,999 of 100,000 done as one range: the gap is found without listing the done ones
    assert lowest_missing(("0-50000,50002-99999", None), 100_000, set(), wanted=4) == [50001]


def test_keys_that_repeat_are_refused_and_decimal_bounds_survive_the_configmap() -> None:
    with pytest.raises(KeyNotUnique):
        plan_batches(iter([1, 2, 2, 3]), 2)
    plan = plan_batches(iter([Decimal("1.5"), Decimal("2.25"), Decimal("10"), Decimal("11")]), 2, null_keys=3)
    assert plan.key_range(1) == (Decimal("10"), None)
    decoded = BatchPlan.decode(plan.encode())
    assert decoded == plan
    assert decoded.null_keys == 3
    assert isinstance(decoded.starts[0], Decimal)


def test_job_names_are_deterministic_and_valid_labels() -> None:
    assert job_name("nodes-backfill", 7) == "nodes-backfill-7"
    long = "a" * 80
    name = job_name(long, 12345)
    assert len(name) <= 63
    assert name.endswith("-12345")
    assert name == job_name(long, 12345)
    assert job_name("b" * 80, 12345) != name
    assert job_name("nodes-backfill", 7, 2) == "nodes-backfill-7-r2"  # a retry round never reuses a name
    assert job_name(long, 12345, 3).endswith("-12345-r3")
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
    assert assignment["version"] == 3
    assert assignment["keyRange"] == {"start": 150, "end": 200}
    assert assignment["collection"]["name"] == "articles__v2"
    assert assignment["source"]["sql"]["urlEnv"] == "VO_SOURCE_URL"
    assert assignment["milvus"]["tokenEnv"] == "VO_MILVUS_TOKEN"
    assert assignment["model"]["maxSeqLength"] == 128
    numeric = batch_assignment(
        namespace="s", plan="p", index=1, plan_spec=PLAN, collection_spec=COLLECTION,
        milvus_uri="http://m:1", physical="a__v2", key_range=(Decimal("1.50"), "abc"),
    )  # fmt: skip
    assert numeric["keyRange"] == {"start": {"numeric": "1.50"}, "end": "abc"}
    files = {"format": "JSONL", "path": "/data/a.jsonl", "idField": "id", "textFields": ["body"]}
    files_plan = MigrationPlanSpec.model_validate(
        PLAN.model_dump(by_alias=True, exclude_none=True) | {"source": {"files": files}}
    )
    records = batch_assignment(
        namespace="s", plan="p", index=1, plan_spec=files_plan, collection_spec=COLLECTION,
        milvus_uri="http://m:1", physical="a__v2", key_range=(500, 1000),
    )  # fmt: skip
    assert records["source"] == {"files": {**files, "keepsContentHash": False}}
    assert records["keyRange"] == {"start": 500, "end": 1000}


def test_the_job_is_restricted_owned_and_keeps_secrets_out_of_its_spec() -> None:
    job = batch_job(
        plan="backfill",
        plan_uid="uid-1",
        index=3,
        round_=0,
        assignment={"keyRange": {"start": 1}},
        secrets=[SecretEnv("VO_SOURCE_URL", "db", "url")],
        settings=JobSettings(
            image="registry/vector-operator:1", command=("vector-operator", "worker"), backoff_limit=3
        ),
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
    assert job["spec"]["backoffLimit"] == 3
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert "volumes" not in pod


def test_milvus_tls_settings_reach_the_job_and_its_assignment() -> None:
    document = COLLECTION.model_dump(by_alias=True, exclude_none=True)
    document["milvus"].update(
        uri="https://milvus.example:19530",
        tls={"enabled": True, "caSecretRef": {"name": "milvus-ca", "key": "ca.pem"}, "serverName": "m"},
    )
    tls = VectorCollectionSpec.model_validate(document)
    assignment = batch_assignment(
        namespace="s", plan="p", index=0, plan_spec=PLAN, collection_spec=tls,
        milvus_uri="https://milvus.example:19530", physical="a__v2", key_range=(None, None),
    )  # fmt: skip
    assert assignment["milvus"]["tls"] is True
    assert assignment["milvus"]["caFile"] == MILVUS_CA_FILE
    assert assignment["milvus"]["serverName"] == "m"
    job = batch_job(
        plan="p", plan_uid="u", index=0, round_=0, assignment=assignment, secrets=[],
        settings=JobSettings(image="i", command=("w",), backoff_limit=0,
                             milvus_ca=SecretKeyReference(name="milvus-ca", key="ca.pem")),
        overrides=None,
    )  # fmt: skip
    pod = job["spec"]["template"]["spec"]
    (volume,) = pod["volumes"]
    assert volume["secret"] == {"secretName": "milvus-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}]}
    (mount,) = pod["containers"][0]["volumeMounts"]
    assert f"{mount['mountPath']}/ca.crt" == MILVUS_CA_FILE
    assert mount["readOnly"] is True


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
    status = MigrationPlanStatus()
    fold_success(status, 0, result(100, 98, {"emptyText": 2}, 0.99, 20))
    fold_success(status, 1, result(100, 100, {}, 0.95, 60))
    progress, quality = status.progress, status.quality
    assert progress is not None
    assert quality is not None
    assert quality.coherence is not None
    assert progress.records_read == 200
    assert progress.records_done == 198
    assert progress.records_skipped == 2
    assert progress.skipped_by_reason == {"emptyText": 2}
    assert status.completed_ranges == "0-1"
    assert quality.coherence.mean == pytest.approx((0.99 * 20 + 0.95 * 60) / 80)
    assert quality.coherence.min == pytest.approx(0.94)
    assert quality.failure_rate == pytest.approx(0.01)
    assert quality.sampled_records == 80


def test_a_negative_coherence_is_a_valid_status() -> None:
    status = MigrationPlanStatus()
    fold_success(status, 0, result(10, 10, {}, -0.3, 5))  # vectors swapped with others point away
    written = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert written["quality"]["coherence"]["mean"] == pytest.approx(-0.3)
    assert MigrationPlanStatus.model_validate(written).quality is not None


def test_recent_failures_are_bounded_and_not_repeated() -> None:
    status = MigrationPlanStatus()
    moment = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)
    for batch in range(30):
        fold_failure(status, batch, "BatchFailed", "x", moment)
    assert status.recent_failures is not None
    assert len(status.recent_failures) == 20
    assert status.recent_failures[-1].batch == 29
    assert status.failed_ranges == "0-29"
    fold_failure(status, 29, "BatchFailed", "x", moment)
    assert len(status.recent_failures) == 20
