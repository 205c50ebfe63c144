"""The result document: versioned JSON in the termination message, always under 4 KB."""

from __future__ import annotations

import json

from vector_operator.contract.result import (
    BatchReference,
    BatchSizes,
    CoherenceStats,
    QualityResult,
    Reason,
    RecordCounts,
    Status,
    WorkerResult,
)


def full_result() -> WorkerResult:
    return WorkerResult(
        status=Status.SUCCEEDED,
        reason=Reason.COMPLETED,
        batch=BatchReference(namespace="search", plan="nodes-backfill", index=41),
        collection="ai_native_nodes__v2",
        records=RecordCounts(
            read=5000, embedded=4990, upserted=4988, skipped={"nullText": 10, "zeroVector": 2}
        ),
        quality=QualityResult(
            sampled=100, coherence=CoherenceStats(min=0.991, mean=0.998, max=1.0), retrievability=1.0
        ),
        batch_sizes=BatchSizes(
            count=300, first=32, last=16, min=16, max=64, median=16, runs=[(32, 1), (16, 299)]
        ),
        recommendations=["raise maxBatchSize"],
    )


def test_is_camel_case_versioned_json() -> None:
    document = json.loads(full_result().to_termination_message())
    assert document["version"] == 1
    assert document["kind"] == "WorkerResult"
    assert document["status"] == "Succeeded"
    assert document["records"] == {
        "read": 5000,
        "embedded": 4990,
        "upserted": 4988,
        "skipped": {"nullText": 10, "zeroVector": 2},
        "truncated": 0,
    }
    assert document["quality"]["coherence"] == {"min": 0.991, "mean": 0.998, "max": 1.0}
    assert document["batchSizes"]["runs"] == [[32, 1], [16, 299]]
    assert "batchP95Ms" in document["timings"]


def test_round_trips() -> None:
    result = full_result()
    assert WorkerResult.model_validate_json(result.to_termination_message()) == result


def test_long_lists_and_messages_are_cut_to_fit_but_counts_never_are() -> None:
    result = full_result()
    result.status, result.reason = Status.FAILED, Reason.INTERNAL_ERROR
    result.message = "x" * 20_000
    result.batch_sizes.runs = [(size, 1) for size in range(16, 1024)]
    result.recommendations = [f"recommendation {index}: " + "y" * 150 for index in range(40)]
    message = result.to_termination_message()
    assert len(message.encode("utf-8")) <= 4096
    document = json.loads(message)
    assert document["records"]["upserted"] == 4988
    assert document["records"]["skipped"] == {"nullText": 10, "zeroVector": 2}
    assert document["batchSizes"]["runsTruncated"] is True
    assert document["message"].startswith("xxx")


def test_multibyte_messages_fit_in_bytes_not_characters() -> None:
    result = WorkerResult(status=Status.FAILED, reason=Reason.SOURCE_UNAVAILABLE, message="é" * 5000)
    assert len(result.to_termination_message().encode("utf-8")) <= 4096


def test_an_operator_reads_results_of_newer_workers() -> None:
    document = json.loads(full_result().to_termination_message())
    document["records"]["deduplicated"] = 3
    document["gpuSeconds"] = 1.5
    assert WorkerResult.model_validate(document).records.upserted == 4988
