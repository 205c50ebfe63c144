"""Quality, measured on a sample of every batch (DESIGN.md, "Quality, concretely").

- coherence: the cosine between each sampled vector *as stored in Milvus* and a reference
  encoding of the same text by the declared model in float32 at its full sequence length. It
  falls when ids and vectors get mixed up, when writes are corrupted, when models are mixed and
  when speed settings (half precision, a short maxSeqLength) cost too much.
- retrievability: the share of sampled vectors that, searched through the index with the serving
  search parameters, return their own record with the best score (ties count).
- collapse: the mean pairwise cosine of the sample; near 1 the embeddings carry no information.

The arithmetic is pure; the Milvus reads and the reference model come in through two small
protocols, so this module knows neither pymilvus nor torch.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vector_operator.api.vectorcollection import MetricType
from vector_operator.contract.result import Anomalies, CoherenceStats, QualityResult
from vector_operator.sources.records import Key

COLLAPSE_MEAN_COSINE = 0.9
"""A sample whose vectors are this similar on average has collapsed."""
TIE_TOLERANCE = 1e-4
"""Relative and absolute tolerance when comparing a search score with the record's own score."""

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SampledRecord:
    key: Key
    text: str


class QualitySample:
    """A uniform sample of at most ``size`` written records (reservoir sampling: one pass, memory
    bounded by ``size``), reproducible for a given ``seed``."""

    def __init__(self, size: int, seed: str) -> None:
        self.size = size
        self.offered = 0
        self.records: list[SampledRecord] = []
        self._random = random.Random(zlib.crc32(seed.encode("utf-8")))  # noqa: S311  (sampling, not crypto)

    def offer(self, key: Key, text: str) -> None:
        self.offered += 1
        if len(self.records) < self.size:
            self.records.append(SampledRecord(key, text))
            return
        slot = self._random.randrange(self.offered)
        if slot < self.size:
            self.records[slot] = SampledRecord(key, text)


class StoredVectors(Protocol):
    """Read access to the vectors as Milvus stores and serves them."""

    def fetch_vectors(self, keys: Sequence[Key]) -> dict[Key, FloatArray]:
        """The stored vector of each key that exists."""
        ...

    def search_best(self, vectors: FloatArray) -> list[tuple[Key, float] | None]:
        """For each query vector, the best hit (key, Milvus score) through the index."""
        ...


class ReferenceEncoder(Protocol):
    def reference_encode(self, texts: Sequence[str]) -> FloatArray:
        """Float32 vectors of ``texts`` by the declared model at its full sequence length."""
        ...


def cosine_rows(left: FloatArray, right: FloatArray) -> npt.NDArray[np.float64]:
    """Row-wise cosine similarity; 0 where either row has no length."""
    left64, right64 = left.astype(np.float64), right.astype(np.float64)
    norms = np.linalg.norm(left64, axis=1) * np.linalg.norm(right64, axis=1)
    dots: npt.NDArray[np.float64] = np.einsum("ij,ij->i", left64, right64)
    cosines: npt.NDArray[np.float64] = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return cosines


def mean_pairwise_cosine(vectors: FloatArray) -> float | None:
    """The mean cosine over all distinct pairs; None for fewer than two vectors."""
    if len(vectors) < 2:
        return None
    vectors64 = vectors.astype(np.float64)
    norms = np.linalg.norm(vectors64, axis=1, keepdims=True)
    unit = np.divide(vectors64, norms, out=np.zeros_like(vectors64), where=norms > 0)
    gram = unit @ unit.T
    count = len(vectors)
    return float((gram.sum() - np.trace(gram)) / (count * (count - 1)))


def own_score(metric: MetricType, vector: FloatArray) -> float:
    """The score a vector gets against itself under ``metric``, as Milvus reports it."""
    if metric is MetricType.L2:
        return 0.0
    if metric is MetricType.IP:
        return float(np.dot(vector.astype(np.float64), vector.astype(np.float64)))
    return 1.0


def finds_itself(metric: MetricType, key: Key, vector: FloatArray, best: tuple[Key, float] | None) -> bool:
    """Whether searching ``vector`` returned record ``key`` first, or another record with exactly
    the score ``key`` has (a tie, e.g. a duplicate vector). A better-scoring other record (an
    unnormalised neighbour under IP) or a worse-scoring one (the index missed the record) fails."""
    if best is None:
        return False
    best_key, best_score = best
    if best_key == key:
        return True
    own = own_score(metric, vector)
    return abs(best_score - own) <= TIE_TOLERANCE * max(1.0, abs(own))


def measure_quality(
    sample: Sequence[SampledRecord],
    stored: StoredVectors,
    reference: ReferenceEncoder,
    metric: MetricType,
    *,
    norm_outliers: int = 0,
    duplicate_vectors: int = 0,
) -> QualityResult:
    """Coherence, retrievability and collapse of ``sample`` as Milvus stores it now."""
    anomalies = Anomalies(norm_outliers=norm_outliers, duplicate_vectors=duplicate_vectors)
    if not sample:
        return QualityResult(anomalies=anomalies)
    found = stored.fetch_vectors([record.key for record in sample])
    present = [record for record in sample if record.key in found]
    missing = len(sample) - len(present)
    coherences = np.zeros(len(sample), dtype=np.float64)  # a missing record scores 0
    retrievability: float | None = None
    if present:
        stored_vectors = np.stack([found[record.key] for record in present]).astype(np.float32)
        reference_vectors = reference.reference_encode([record.text for record in present])
        present_coherence = cosine_rows(stored_vectors, reference_vectors)
        positions = [index for index, record in enumerate(sample) if record.key in found]
        coherences[positions] = present_coherence
        hits = stored.search_best(stored_vectors)
        retrieved = sum(
            finds_itself(metric, record.key, vector, hit)
            for record, vector, hit in zip(present, stored_vectors, hits, strict=True)
        )
        retrievability = retrieved / len(sample)
        anomalies.mean_pairwise_cosine = _rounded(mean_pairwise_cosine(stored_vectors))
        anomalies.collapse = (
            anomalies.mean_pairwise_cosine is not None
            and anomalies.mean_pairwise_cosine > COLLAPSE_MEAN_COSINE
        )
    else:
        retrievability = 0.0
    return QualityResult(
        sampled=len(sample),
        coherence=CoherenceStats(
            min=round(float(coherences.min()), 4),
            mean=round(float(coherences.mean()), 4),
            max=round(float(coherences.max()), 4),
        ),
        retrievability=round(retrievability, 4),
        missing=missing,
        anomalies=anomalies,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
