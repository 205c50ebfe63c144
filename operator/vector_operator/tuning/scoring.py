"""How good a set of parameters is: recall@k against exact search, latency, feasibility within the
budget, the best trial, the Pareto front, and whether a result beats the current parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vector_operator.api.collection_tuning import TunedParameters, TuningTrial

RECALL_TIE = 0.001
"""Recalls this close count as equal; the lower latency wins then."""
LATENCY_SLACK_MS = 0.5
"""Added to the relative tolerance when latencies are compared side by side."""

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Measurement:
    recall_at_k: float | None
    p50_ms: float | None
    p95_ms: float | None
    failure: str | None = None


def similarity(queries: Vectors, vectors: Vectors, metric: str) -> npt.NDArray[np.float32]:
    """For each query and vector, a score that is higher the nearer they are under ``metric``
    (minus the squared distance for L2, the cosine, the inner product)."""
    if metric == "L2":
        cross: npt.NDArray[np.float32] = queries @ vectors.T
        squared: npt.NDArray[np.float32] = (
            (queries**2).sum(axis=1, keepdims=True) - 2 * cross + (vectors**2).sum(axis=1)[None, :]
        )
        return -squared
    if metric == "COSINE":
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        scores: npt.NDArray[np.float32] = queries @ unit.T
        return scores
    inner: npt.NDArray[np.float32] = queries @ vectors.T
    return inner


def exact_neighbours(sample: Vectors, queries: Vectors, metric: str, k: int) -> npt.NDArray[np.int64]:
    """For each query, the row numbers of its k nearest sample vectors under ``metric``."""
    scores = similarity(queries, sample, metric)
    k = min(k, sample.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return top.astype(np.int64)


class RunningTopK:
    """The k best-scoring keys per query over vectors seen page by page (a full scan that never
    holds more than a page and the current best in memory)."""

    def __init__(self, queries: Vectors, metric: str, k: int) -> None:
        self.queries, self.metric, self.k = queries, metric, k
        self.scores = np.full((queries.shape[0], 0), -np.inf, dtype=np.float32)
        self.keys = np.empty((queries.shape[0], 0), dtype=object)

    def add(self, keys: Sequence[object], vectors: Vectors) -> None:
        scores = np.concatenate([self.scores, similarity(self.queries, vectors, self.metric)], axis=1)
        page_keys = np.empty((len(keys),), dtype=object)
        page_keys[:] = list(keys)
        all_keys = np.concatenate(
            [self.keys, np.broadcast_to(page_keys, (self.queries.shape[0], len(keys)))], axis=1
        )
        if scores.shape[1] > self.k:
            best = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
            scores = np.take_along_axis(scores, best, axis=1)
            all_keys = np.take_along_axis(all_keys, best, axis=1)
        self.scores, self.keys = scores.astype(np.float32), all_keys

    def neighbours(self) -> list[set[object]]:
        return [set(row.tolist()) for row in self.keys]


def recall(found: Sequence[Sequence[object]], exact: npt.NDArray[Any] | Sequence[set[object]]) -> float:
    """Mean share of each query's exact neighbours among the ones the index returned."""
    shares = [
        len(set(hits) & (truth if isinstance(truth, set) else set(truth.tolist()))) / max(1, len(truth))
        for hits, truth in zip(found, exact, strict=True)
    ]
    return float(np.mean(shares)) if shares else 0.0


def feasible(measured: TunedParameters, budget_ms: float) -> bool:
    return measured.search_latency_p95_ms is not None and measured.search_latency_p95_ms <= budget_ms


def best_trial(trials: Sequence[TuningTrial], budget_ms: float) -> TuningTrial | None:
    """The highest recall within the latency budget; among equal recalls (within RECALL_TIE) of
    one index type the smallest search parameter (nprobe, ef: latency grows with it, where single
    measurements are mostly noise), across types the lower p95."""
    candidates = [
        t for t in trials if t.failure is None and t.recall_at_k is not None and feasible(t, budget_ms)
    ]
    if not candidates:
        return None
    top = max(round((t.recall_at_k or 0.0) / RECALL_TIE) for t in candidates)
    tied = [t for t in candidates if round((t.recall_at_k or 0.0) / RECALL_TIE) == top]
    p95 = {t.number: t.search_latency_p95_ms or float("inf") for t in tied}
    if len({t.index_type for t in tied}) == 1:
        return min(tied, key=lambda t: (sum(t.search_params.values()), p95[t.number]))
    return min(tied, key=lambda t: p95[t.number])


def pareto_front(trials: Sequence[TuningTrial]) -> list[int]:
    """The numbers of the trials no other trial beats on both recall and p95."""
    measured = [
        t for t in trials if t.failure is None and t.recall_at_k is not None and t.search_latency_p95_ms
    ]
    front = []
    for trial in measured:
        assert trial.recall_at_k is not None
        assert trial.search_latency_p95_ms is not None
        dominated = any(
            other.recall_at_k is not None
            and other.search_latency_p95_ms is not None
            and other.recall_at_k >= trial.recall_at_k
            and other.search_latency_p95_ms <= trial.search_latency_p95_ms
            and (
                other.recall_at_k > trial.recall_at_k
                or other.search_latency_p95_ms < trial.search_latency_p95_ms
            )
            for other in measured
        )
        if not dominated:
            front.append(trial.number)
    return sorted(front)


def no_worse_latency(candidate_ms: float, current_ms: float, tolerance: float) -> bool:
    return candidate_ms <= current_ms * (1 + tolerance) + LATENCY_SLACK_MS


def improves(
    best: TunedParameters, current: TunedParameters, budget_ms: float, tolerance: float
) -> str | None:
    """Why ``best`` (measured side by side with ``current``) does not improve on it, or None
    when it does: a higher recall at a latency no worse, or the same recall faster."""
    if best.recall_at_k is None or best.search_latency_p95_ms is None:
        return "the best trial could not be measured again"
    if current.recall_at_k is None or current.search_latency_p95_ms is None:
        return None if feasible(best, budget_ms) else "the best trial is over the latency budget"
    if not feasible(best, budget_ms):
        return (
            f"measured again, its p95 {best.search_latency_p95_ms:.2f} ms is over the {budget_ms} ms budget"
        )
    if best.recall_at_k + RECALL_TIE < current.recall_at_k:
        return f"its recall@k {best.recall_at_k:.3f} is below the current {current.recall_at_k:.3f}"
    if not no_worse_latency(best.search_latency_p95_ms, current.search_latency_p95_ms, tolerance):
        return (
            f"its p95 {best.search_latency_p95_ms:.2f} ms is worse than the current"
            f" {current.search_latency_p95_ms:.2f} ms"
        )
    faster = best.search_latency_p95_ms < current.search_latency_p95_ms
    if best.recall_at_k <= current.recall_at_k + RECALL_TIE and not faster:
        return "it is no better than the current parameters"
    return None
