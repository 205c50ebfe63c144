"""The plan's batches: key ranges of about `recordsPerJob` source rows each.

Boundaries are taken from one ordered pass over the primary key (every N-th key starts a new
batch), so batches hold the same number of rows whatever the key distribution (dense ids, gaps,
skew, text keys). Batch i covers [boundary[i], boundary[i+1]); the first batch has no lower bound
and the last no upper bound, so rows added to the source during the migration still land in a
batch. The boundaries are stored once (a ConfigMap owned by the plan); status holds only counts.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass

Key = int | str


@dataclass(frozen=True)
class BatchPlan:
    records_total: int
    records_per_batch: int
    # The first key of every batch after the first: len(starts) == batches - 1.
    starts: tuple[Key, ...]

    @property
    def batches(self) -> int:
        return 0 if self.records_total == 0 else len(self.starts) + 1

    def key_range(self, index: int) -> tuple[Key | None, Key | None]:
        """[start, end) of batch `index`; None is an open bound."""
        if not 0 <= index < self.batches:
            raise IndexError(f"batch {index} is not in 0..{self.batches - 1}")
        start = self.starts[index - 1] if index > 0 else None
        end = self.starts[index] if index < len(self.starts) else None
        return start, end

    def encode(self) -> str:
        """Compact text for a ConfigMap's binaryData (gzip, base64)."""
        document = {
            "recordsTotal": self.records_total,
            "recordsPerBatch": self.records_per_batch,
            "starts": self.starts,
        }
        return base64.b64encode(gzip.compress(json.dumps(document).encode(), mtime=0)).decode()

    @classmethod
    def decode(cls, text: str) -> BatchPlan:
        document = json.loads(gzip.decompress(base64.b64decode(text)))
        return cls(int(document["recordsTotal"]), int(document["recordsPerBatch"]), tuple(document["starts"]))


def plan_batches(ordered_keys: Iterable[Key], records_per_batch: int) -> BatchPlan:
    """Batches from the primary keys in ascending order (streamed: memory is the boundaries)."""
    if records_per_batch < 1:
        raise ValueError("records per batch must be at least 1")
    starts: list[Key] = []
    total = 0
    for key in ordered_keys:
        if total and total % records_per_batch == 0:
            starts.append(key)
        total += 1
    return BatchPlan(total, records_per_batch, tuple(starts))
