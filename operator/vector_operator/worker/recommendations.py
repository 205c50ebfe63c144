"""What the user should change, from what one batch saw. Pure: facts in, short sentences out."""

from __future__ import annotations

from dataclasses import dataclass

from vector_operator.api.vectorcollection import MetricType
from vector_operator.contract.result import BatchSizes, QualityResult, RecordCounts

HEALTHY_COHERENCE = 0.99
SKIPPED_SHARE_WORTH_A_LOOK = 0.05
IDLE_SHARE_WORTH_A_LOOK = 0.25
MAX_RECOMMENDATIONS = 8


@dataclass(frozen=True)
class BatchFacts:
    """Everything the recommendations look at."""

    metric: MetricType
    normalize: bool
    precision: str
    max_seq_length: int
    full_max_seq_length: int
    records: RecordCounts
    quality: QualityResult | None
    batch_sizes: BatchSizes
    min_batch_size: int
    max_batch_size: int
    target_batch_latency_ms: int
    batch_p50_ms: float
    encode_idle_share: float
    """Share of the run the encoder waited for the reader or the writer."""


def _coherence_advice(facts: BatchFacts, mean: float) -> str:
    if facts.max_seq_length < facts.full_max_seq_length and facts.records.truncated:
        return (
            f"coherence {mean:.2f} is below {HEALTHY_COHERENCE}: maxSeqLength {facts.max_seq_length} "
            f"cut {facts.records.truncated} of {facts.records.embedded} texts short; raise it (the model "
            f"reads up to {facts.full_max_seq_length} tokens) or leave it unset"
        )
    if facts.precision != "float32":
        return (
            f"coherence {mean:.2f} is below {HEALTHY_COHERENCE}: {facts.precision} costs too much; "
            "use float32"
        )
    return (
        f"coherence {mean:.2f} is below {HEALTHY_COHERENCE}: stored vectors differ from the model's "
        "encoding of their text; look for ids and vectors mixed up, several models in one collection, "
        "or corrupted writes"
    )


def _quality_advice(facts: BatchFacts) -> list[str]:
    quality, advice = facts.quality, list[str]()
    if quality is None or not quality.sampled:
        return advice
    if quality.missing:
        advice.append(
            f"{quality.missing} of {quality.sampled} sampled records were written but are not in the "
            "collection: is something else deleting from it?"
        )
    if quality.coherence is not None and quality.coherence.mean < HEALTHY_COHERENCE:
        advice.append(_coherence_advice(facts, quality.coherence.mean))
    unnormalised_ip = facts.metric is MetricType.IP and not facts.normalize
    if quality.retrievability is not None and quality.retrievability < 1.0 and not unnormalised_ip:
        advice.append(
            f"retrievability {quality.retrievability:.2f}: some records are not found first by their own "
            "vector; raise searchParams ef (HNSW) or nprobe (IVF), or check for duplicate vectors"
        )
    if quality.anomalies.collapse:
        advice.append(
            "the sampled vectors are nearly identical (mean pairwise cosine "
            f"{quality.anomalies.mean_pairwise_cosine}): the embeddings collapsed; check the model and "
            "the text"
        )
    if quality.anomalies.duplicate_vectors:
        advice.append(
            f"{quality.anomalies.duplicate_vectors} vectors equal the vector of a different text: texts that "
            "differ only past maxSeqLength, or a template that drops what tells them apart"
        )
    return advice


def _batching_advice(facts: BatchFacts) -> list[str]:
    sizes, target, p50 = facts.batch_sizes, facts.target_batch_latency_ms, facts.batch_p50_ms
    if sizes.count < 8:
        return []
    if sizes.median >= facts.max_batch_size and p50 < 0.5 * target:
        return [
            f"micro-batches stayed at maxBatchSize {facts.max_batch_size} and took {p50:.0f} ms against a "
            f"{target} ms target: raise maxBatchSize"
        ]
    if sizes.median <= facts.min_batch_size and p50 > 1.5 * target:
        return [
            f"micro-batches at minBatchSize {facts.min_batch_size} took {p50:.0f} ms against a {target} ms "
            "target: give the pod more CPU or a GPU, or raise targetBatchLatencyMs"
        ]
    return []


def recommend(facts: BatchFacts, notes: list[str] | None = None) -> list[str]:
    """The recommendations for one batch, most important first; ``notes`` (e.g. from model
    loading) come first."""
    advice = list(notes or [])
    if facts.metric is MetricType.IP and not facts.normalize:
        retrievability = facts.quality.retrievability if facts.quality else None
        advice.append(
            "normalise embeddings for the IP metric (embedding.normalize: true): unnormalised, a record's "
            "own vector need not score best"
            + (f" (retrievability {retrievability:.2f})" if retrievability is not None else "")
        )
    advice += _quality_advice(facts)
    records = facts.records
    skipped = sum(records.skipped.values())
    if records.read and skipped / records.read > SKIPPED_SHARE_WORTH_A_LOOK:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(records.skipped.items()))
        advice.append(
            f"{skipped} of {records.read} records were skipped ({reasons}): fix those rows or the text"
        )
    if records.truncated and facts.max_seq_length >= facts.full_max_seq_length:
        advice.append(
            f"{records.truncated} texts exceed the model's limit of {facts.full_max_seq_length} tokens and "
            "were embedded truncated: split long documents into chunks if their ends matter"
        )
    if facts.quality is not None and facts.quality.anomalies.norm_outliers:
        advice.append(
            f"{facts.quality.anomalies.norm_outliers} vectors have outlying norms: look at those texts "
            "(empty-ish, repeated tokens, another language)"
        )
    advice += _batching_advice(facts)
    if facts.encode_idle_share > IDLE_SHARE_WORTH_A_LOOK:
        advice.append(
            f"the model waited {facts.encode_idle_share:.0%} of the run for the source or Milvus: the "
            "model is not the bottleneck; look at source latency and Milvus write latency"
        )
    return advice[:MAX_RECOMMENDATIONS]
