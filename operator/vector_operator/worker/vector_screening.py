"""Which imported records may be written: the checks a record with a precomputed vector passes
before it reaches Milvus, in order, each failure counted by reason.

Pure (numpy only): rows in, records to write out. Per record: no key (nullKey), a key the
collection cannot store (invalidKey), a key already seen in this batch (duplicateKey: the first one
is kept, later ones never overwrite it), a scalar field that does not fit (nullField,
invalidField, ...), no vector (nullVector), a vector of another length than the collection's
(wrongDimension); then, page by page, a vector whose length is not 1 although the model normalizes
(notNormalized: it would not be comparable with the model's vectors), and the checks every
embedded vector passes (:class:`VectorChecker`: NaN or infinite components, all zeros; norm
outliers and identical vectors counted as anomalies).

The text, when the records have one, is not needed to write them: it only goes with a record into
the quality sample, so a record whose text is missing or unusable is written all the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vector_operator.contract.content_hash import CONTENT_HASH_FIELD
from vector_operator.contract.result import SkipReason
from vector_operator.sources.records import Key, SourceRow
from vector_operator.worker.field_mapping import INT64_RANGE, FieldMapper
from vector_operator.worker.text_building import TextBuilder
from vector_operator.worker.vector_checks import ZERO_NORM, VectorChecker

FloatArray = npt.NDArray[np.float32]
NORM_TOLERANCE = 1e-3
"""How far from 1 the L2 norm of an imported vector may be when the model normalizes (float32
rounding of a unit vector stays within 1e-6; a vector normalised in float16 within 1e-3)."""


def not_normalized(
    vectors: npt.NDArray[np.floating], tolerance: float = NORM_TOLERANCE
) -> npt.NDArray[np.bool_]:
    """Per row of ``vectors``: finite and not zero, but of an L2 norm further than ``tolerance``
    from 1. NaN, infinite and zero vectors are left to :class:`VectorChecker`, which names them."""
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    result: npt.NDArray[np.bool_] = (
        np.isfinite(norms) & (norms > ZERO_NORM) & (np.abs(norms - 1.0) > tolerance)
    )
    return result


@dataclass(slots=True)
class ImportedRecord:
    """A record to write: its key and vector as the collection stores them, its scalar fields, and
    its text (for the quality sample) and content hash (passed through) where it has them."""

    key: Key
    vector: FloatArray
    fields: dict[str, object]
    text: str | None = None
    content_hash: int | None = None


@dataclass
class ScreenCounts:
    """What the screen saw: records read, skipped by reason, and the anomalies of those kept."""

    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    norm_outliers: int = 0
    duplicate_vectors: int = 0


def _content_hash(row: SourceRow) -> int | None:
    value = row.field_values.get(CONTENT_HASH_FIELD)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if INT64_RANGE[0] <= value <= INT64_RANGE[1] else None


class ImportScreen:
    """Screens the pages of one batch in order, remembering the keys it has seen."""

    def __init__(
        self,
        *,
        field_mapper: FieldMapper,
        checker: VectorChecker,
        normalize: bool,
        text_builder: TextBuilder | None = None,
        max_text_chars: int | None = None,
    ) -> None:
        """``normalize``: the model normalizes, so every vector must be of length 1.
        ``text_builder``: how a record's text is built, when the records have one;
        ``max_text_chars``: what of it is kept (what the model reads of it)."""
        self._field_mapper = field_mapper
        self._checker = checker
        self._normalize = normalize
        self._text_builder = text_builder
        self._max_text_chars = max_text_chars
        self._seen: set[Key] = set()
        """Every key of the batch so far: a batch is a bounded range of records (the plan's batch
        size), so this stays small (about 100 bytes a key)."""
        self.counts = ScreenCounts()

    @property
    def dimension(self) -> int:
        return self._checker.dimension

    def _text(self, row: SourceRow) -> str | None:
        if self._text_builder is None:
            return None
        text = self._text_builder.build(row.text_values)
        if isinstance(text, SkipReason):
            return None
        return text[: self._max_text_chars] if self._max_text_chars is not None else text

    def _candidate(self, row: SourceRow) -> ImportedRecord | SkipReason:
        """The record of ``row`` if it passes the per-record checks, else why not."""
        if row.key is None:
            return SkipReason.NULL_KEY
        key = self._field_mapper.key(row.key)
        if isinstance(key, SkipReason):
            return key
        if key in self._seen:
            return SkipReason.DUPLICATE_KEY
        self._seen.add(key)
        fields = self._field_mapper.map(row.field_values)
        if isinstance(fields, SkipReason):
            return fields
        if row.vector is None:
            return SkipReason.NULL_VECTOR
        vector = np.asarray(row.vector, dtype=np.float32)
        if vector.ndim != 1 or vector.shape[0] != self.dimension:
            return SkipReason.WRONG_DIMENSION
        return ImportedRecord(
            key=key, vector=vector, fields=fields, text=self._text(row), content_hash=_content_hash(row)
        )

    def screen(self, rows: Sequence[SourceRow]) -> list[ImportedRecord]:
        """The records of ``rows`` that may be written, in order; the others are counted."""
        counts = self.counts
        candidates: list[ImportedRecord] = []
        for row in rows:
            counts.read += 1
            candidate = self._candidate(row)
            if isinstance(candidate, SkipReason):
                counts.skipped[candidate] += 1
            else:
                candidates.append(candidate)
        if not candidates:
            return []
        vectors = np.stack([candidate.vector for candidate in candidates])
        if self._normalize:
            off = not_normalized(vectors)
            counts.skipped[SkipReason.NOT_NORMALIZED] += int(np.count_nonzero(off))
            candidates = [
                candidate for candidate, bad in zip(candidates, off.tolist(), strict=True) if not bad
            ]
            vectors = vectors[~off]
            if not candidates:
                return []
        # The duplicate test counts identical vectors of different texts; without a text, every
        # record counts as different from every other.
        texts = [
            candidate.text if candidate.text is not None else f"\0record {candidate.key!r}"
            for candidate in candidates
        ]
        checked = self._checker.check(vectors, texts)
        for _, reason in checked.rejected:
            counts.skipped[reason] += 1
        counts.norm_outliers += checked.norm_outliers
        counts.duplicate_vectors += checked.duplicate_vectors
        accepted: list[ImportedRecord] = []
        for index in np.flatnonzero(checked.accepted).tolist():
            record = candidates[index]
            record.vector = vectors[index]  # a row of one contiguous array: the views into the page go
            accepted.append(record)
        return accepted
