"""The plan's batches: key ranges of about `recordsPerJob` source rows each.

Boundaries are taken from one ordered pass over the primary key in the database's own order
(every N-th key starts a new batch), so batches hold the same number of rows whatever the key
distribution (dense ids, gaps, skew, text keys under any collation, NUMERIC keys). Batch i covers
[boundary[i], boundary[i+1]); the first batch has no lower bound and the last no upper bound, so
rows added to the source during the migration still land in a batch. Bounds are only ever
compared by the database. The boundaries are stored once (a ConfigMap owned by the plan); status
holds only counts.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from vector_operator.contract.assignment import KeyValue
from vector_operator.contract.sync import Watermark

MAX_BATCHES = 100_000
"""The most batches one plan may have: their boundaries must fit one ConfigMap (1 MiB)."""
MAX_ENCODED_BYTES = 1_000_000
"""A ConfigMap holds 1 MiB, its metadata included."""


class KeyNotUnique(ValueError):
    """Two rows share a key: batches would overlap and records collide in Milvus."""


@dataclass(frozen=True)
class BatchPlan:
    records_total: int
    """Rows with a key: what the batches cover."""
    records_per_batch: int
    starts: tuple[KeyValue, ...]
    """The first key of every batch after the first: len(starts) == batches - 1."""
    null_keys: int = 0
    """Rows without a key: skipped (nullKey), counted once here."""
    watermark: Watermark | None = None
    """The sync's change column at its maximum before the scan: the catch-up starts from it."""

    @classmethod
    def of_records(cls, records: int, per_batch: int) -> BatchPlan:
        """Ranges of ``per_batch`` record numbers over ``records`` records (files, backups)."""
        return cls(
            records_total=records,
            records_per_batch=per_batch,
            starts=tuple(range(per_batch, records, per_batch)),
        )

    @property
    def batches(self) -> int:
        return 0 if self.records_total == 0 else len(self.starts) + 1

    def key_range(self, index: int) -> tuple[KeyValue | None, KeyValue | None]:
        """[start, end) of batch `index`; None is an open bound."""
        if not 0 <= index < self.batches:
            raise IndexError(f"batch {index} is not in 0..{self.batches - 1}")
        start = self.starts[index - 1] if index > 0 else None
        end = self.starts[index] if index < len(self.starts) else None
        return start, end

    def encode(self) -> str:
        """Compact text for a ConfigMap's binaryData (gzip, base64)."""
        document: dict[str, Any] = {
            "recordsTotal": self.records_total,
            "recordsPerBatch": self.records_per_batch,
            "nullKeys": self.null_keys,
            "starts": [_encode_key(key) for key in self.starts],
        }
        if self.watermark is not None:
            document["watermark"] = self.watermark.model_dump(mode="json")
        raw = json.dumps(document, separators=(",", ":")).encode()
        return base64.b64encode(gzip.compress(raw, mtime=0)).decode()

    @classmethod
    def decode(cls, text: str) -> BatchPlan:
        document = json.loads(gzip.decompress(base64.b64decode(text)))
        return cls(
            records_total=int(document["recordsTotal"]),
            records_per_batch=int(document["recordsPerBatch"]),
            starts=tuple(_decode_key(key) for key in document["starts"]),
            null_keys=int(document.get("nullKeys", 0)),
            watermark=Watermark.model_validate(document["watermark"]) if "watermark" in document else None,
        )


def _encode_key(key: KeyValue) -> Any:
    return {"numeric": format(key, "f")} if isinstance(key, Decimal) else key


def _decode_key(raw: Any) -> KeyValue:
    if isinstance(raw, dict):
        return Decimal(str(raw["numeric"]))
    if isinstance(raw, int | str):
        return raw
    raise ValueError(f"a stored batch boundary is neither an integer, a text nor a decimal: {raw!r}")


def batches_needed(records: int, records_per_batch: int) -> int:
    return math.ceil(records / records_per_batch) if records else 0


def smallest_records_per_batch(records: int) -> int:
    """The least recordsPerJob that keeps `records` within MAX_BATCHES."""
    return max(1, math.ceil(records / MAX_BATCHES))


def plan_batches(ordered_keys: Iterable[KeyValue], records_per_batch: int, null_keys: int = 0) -> BatchPlan:
    """Batches from the primary keys in the database's ascending order (streamed: memory is the
    boundaries). Equal neighbours mean the key is not unique."""
    if records_per_batch < 1:
        raise ValueError("records per batch must be at least 1")
    starts: list[KeyValue] = []
    total = 0
    previous: KeyValue | None = None
    for key in ordered_keys:
        if total and key == previous:
            raise KeyNotUnique(f"the value at position {total + 1} repeats the one before it")
        if total and total % records_per_batch == 0:
            starts.append(key)
        previous = key
        total += 1
    return BatchPlan(total, records_per_batch, tuple(starts), null_keys)
