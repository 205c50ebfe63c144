"""Checks on every micro-batch of vectors before anything is written.

Pure (numpy only). Vectors that cannot be right are rejected with a reason and never written:
NaN or infinite components, all-zero vectors, a dimension other than the collection's. Vectors
that are suspicious but may be right are counted as anomalies and written: norm outliers, and
exactly identical vectors for different texts.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vector_operator.contract.result import SkipReason

ZERO_NORM = 1e-12
NORM_WINDOW = 4096
"""How many recent norms the outlier test compares against."""
NORM_OUTLIER_Z = 6.0
"""A norm this many robust standard deviations (1.4826 x MAD) from the median is an outlier."""
MIN_NORMS_FOR_OUTLIERS = 32
"""Too few norms give no meaningful median: no outliers are called before this many."""
DUPLICATE_MEMORY = 100_000
"""How many recent distinct vectors the duplicate test remembers (16 bytes each, plus a dict)."""


@dataclass
class CheckedBatch:
    """The outcome of checking one micro-batch."""

    accepted: npt.NDArray[np.bool_]
    """Per vector: may be written."""
    rejected: list[tuple[int, SkipReason]] = field(default_factory=list)
    """(index in the batch, reason) of every vector that must not be written."""
    norm_outliers: int = 0
    duplicate_vectors: int = 0
    """Vectors identical to an earlier one (this batch or recent ones) of a different text."""


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


class VectorChecker:
    """Checks micro-batches in order, remembering recent norms and vectors across them."""

    def __init__(self, dimension: int, *, duplicate_memory: int = DUPLICATE_MEMORY) -> None:
        self.dimension = dimension
        self._norms: deque[float] = deque(maxlen=NORM_WINDOW)
        self._seen: OrderedDict[bytes, bytes] = OrderedDict()
        self._duplicate_memory = duplicate_memory

    def check(self, vectors: npt.NDArray[np.floating], texts: Sequence[str]) -> CheckedBatch:
        count = len(texts)
        if vectors.ndim != 2 or vectors.shape[0] != count:
            raise ValueError(f"expected {count} vectors in a 2-d array, got shape {vectors.shape}")
        if vectors.shape[1] != self.dimension:
            return CheckedBatch(
                accepted=np.zeros(count, dtype=bool),
                rejected=[(index, SkipReason.WRONG_DIMENSION) for index in range(count)],
            )
        finite = np.isfinite(vectors).all(axis=1)
        norms = np.linalg.norm(np.where(finite[:, None], vectors, 0.0), axis=1)
        nonzero = norms > ZERO_NORM
        accepted = finite & nonzero
        rejected = [
            (int(index), SkipReason.NON_FINITE_VECTOR if not finite[index] else SkipReason.ZERO_VECTOR)
            for index in np.flatnonzero(~accepted)
        ]
        return CheckedBatch(
            accepted=accepted,
            rejected=rejected,
            norm_outliers=self._count_norm_outliers(norms[accepted]),
            duplicate_vectors=self._count_duplicates(vectors, texts, accepted),
        )

    def _count_norm_outliers(self, norms: npt.NDArray[np.floating]) -> int:
        self._norms.extend(float(norm) for norm in norms)
        if len(self._norms) < MIN_NORMS_FOR_OUTLIERS or not len(norms):
            return 0
        window = np.fromiter(self._norms, dtype=np.float64)
        median = float(np.median(window))
        spread = max(1.4826 * float(np.median(np.abs(window - median))), 1e-3 * median, ZERO_NORM)
        return int(np.count_nonzero(np.abs(norms - median) / spread > NORM_OUTLIER_Z))

    def _count_duplicates(
        self, vectors: npt.NDArray[np.floating], texts: Sequence[str], accepted: npt.NDArray[np.bool_]
    ) -> int:
        contiguous = np.ascontiguousarray(vectors, dtype=np.float32)
        duplicates = 0
        for index in np.flatnonzero(accepted).tolist():
            vector_digest = _digest(contiguous[index].tobytes())
            text_digest = _digest(texts[index].encode("utf-8"))
            earlier = self._seen.get(vector_digest)
            if earlier is None:
                self._seen[vector_digest] = text_digest
                if len(self._seen) > self._duplicate_memory:
                    self._seen.popitem(last=False)
            elif earlier != text_digest:
                duplicates += 1
        return duplicates
