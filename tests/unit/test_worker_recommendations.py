"""Recommendations in the result follow from what the batch saw."""

from __future__ import annotations

from typing import Any

from vector_operator.api.vectorcollection import MetricType
from vector_operator.contract.result import Anomalies, BatchSizes, CoherenceStats, QualityResult, RecordCounts
from vector_operator.worker.recommendations import BatchFacts, recommend


def facts(**changes: Any) -> BatchFacts:
    values: dict[str, Any] = {
        "metric": MetricType.COSINE,
        "normalize": True,
        "precision": "float32",
        "max_seq_length": 256,
        "full_max_seq_length": 256,
        "records": RecordCounts(read=1000, embedded=1000, upserted=1000),
        "quality": QualityResult(
            sampled=100, coherence=CoherenceStats(min=0.995, mean=0.999, max=1.0), retrievability=1.0
        ),
        "batch_sizes": BatchSizes(count=40, first=32, last=64, min=32, max=64, median=64),
        "min_batch_size": 16,
        "max_batch_size": 1024,
        "target_batch_latency_ms": 100,
        "batch_p50_ms": 95.0,
        "encode_idle_share": 0.02,
    }
    values.update(changes)
    return BatchFacts(**values)


def test_a_healthy_batch_needs_nothing() -> None:
    assert recommend(facts()) == []


def test_unnormalised_ip_is_told_to_normalise() -> None:
    quality = QualityResult(sampled=100, coherence=CoherenceStats(min=1, mean=1, max=1), retrievability=0.62)
    advice = recommend(facts(metric=MetricType.IP, normalize=False, quality=quality))
    assert any(text.startswith("normalise embeddings for the IP metric") for text in advice)


def test_a_short_max_seq_length_that_costs_coherence_is_named() -> None:
    quality = QualityResult(
        sampled=100, coherence=CoherenceStats(min=0.6, mean=0.77, max=0.9), retrievability=1.0
    )
    records = RecordCounts(read=1000, embedded=1000, upserted=1000, truncated=1000)
    advice = recommend(facts(max_seq_length=16, quality=quality, records=records))
    assert advice[0].startswith("coherence 0.77 is below 0.99: maxSeqLength 16 cut 1000 of 1000 texts short")


def test_mixed_up_vectors_point_at_the_pipeline() -> None:
    quality = QualityResult(
        sampled=100, coherence=CoherenceStats(min=0.1, mean=0.5, max=1.0), retrievability=1.0
    )
    assert "ids and vectors mixed up" in recommend(facts(quality=quality))[0]


def test_many_skipped_records_are_listed_by_reason() -> None:
    records = RecordCounts(read=100, embedded=80, upserted=80, skipped={"nullText": 15, "invalidUtf8": 5})
    assert recommend(facts(records=records)) == [
        "20 of 100 records were skipped (invalidUtf8 5, nullText 15): fix those rows or the text"
    ]


def test_batches_pinned_at_the_maximum_and_fast_ask_for_a_larger_maximum() -> None:
    sizes = BatchSizes(count=40, first=32, last=1024, min=32, max=1024, median=1024)
    advice = recommend(facts(batch_sizes=sizes, batch_p50_ms=20.0))
    assert advice == [
        "micro-batches stayed at maxBatchSize 1024 and took 20 ms against a 100 ms target: raise maxBatchSize"
    ]


def test_collapse_and_duplicates_are_reported() -> None:
    quality = QualityResult(
        sampled=100,
        coherence=CoherenceStats(min=0.995, mean=0.999, max=1.0),
        retrievability=1.0,
        anomalies=Anomalies(duplicate_vectors=3, mean_pairwise_cosine=0.97, collapse=True),
    )
    advice = recommend(facts(quality=quality))
    assert any("embeddings collapsed" in text for text in advice)
    assert any(text.startswith("3 vectors equal the vector of a different text") for text in advice)
