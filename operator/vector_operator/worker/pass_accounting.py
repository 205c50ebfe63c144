"""What one sync pass adds to the durable :class:`SyncState`: counters, the watermark, how far
the collection is known to be in sync, and the last error while passes fail.

Pure. The worker writes the result into the collection property after the pass's writes are
flushed, so the state never claims more than Milvus holds.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from vector_operator.contract.sync import MAX_ERROR_CHARS, SyncState, Watermark


@dataclass
class ApplyCounts:
    """What applying rows changed in the collection (no-ops are in none of them)."""

    changes_applied: int = 0
    """Rows upserted (reembedded + reused)."""
    deletes_applied: int = 0
    """Entities deleted that the collection held."""
    reembedded: int = 0
    reused: int = 0
    skipped: int = 0

    @property
    def applied(self) -> int:
        return self.changes_applied + self.deletes_applied

    def add(self, other: ApplyCounts) -> None:
        self.changes_applied += other.changes_applied
        self.deletes_applied += other.deletes_applied
        self.reembedded += other.reembedded
        self.reused += other.reused
        self.skipped += other.skipped


@dataclass
class PassOutcome:
    """What a completed pass did."""

    counts: ApplyCounts = field(default_factory=ApplyCounts)
    watermark: Watermark | None = None
    """Where the next pass starts (the change column's largest value applied, or the slot's LSN)."""
    drained: bool = True
    """Every change committed before the pass started is applied (False when a pass stopped
    following a busy slot before reaching its end: the next pass goes on)."""
    full_check_at: datetime.datetime | None = None
    """When this pass's full check finished; None when it ran none."""
    coherence: tuple[float, float] | None = None
    """Mean and lowest coherence of the re-embedded rows it sampled; None when it sampled none."""


def fresh_state(existing: SyncState | None, plan_uid: str, initial_watermark: Watermark | None) -> SyncState:
    """The state to go on from: the collection's, when this plan's worker wrote it; else a start
    from the plan's initial watermark (another plan's state says nothing about this plan's)."""
    if existing is not None and existing.plan_uid == plan_uid:
        return existing
    return SyncState(plan_uid=plan_uid, watermark=initial_watermark)


def state_after_pass(
    state: SyncState,
    outcome: PassOutcome,
    *,
    started_at: datetime.datetime,
    duration_s: float,
    now: datetime.datetime,
) -> SyncState:
    """``state`` once ``outcome``'s pass (started at ``started_at``, ``duration_s`` long) is
    flushed; the error of earlier passes is cleared."""
    counts = outcome.counts
    return state.model_copy(
        update={
            "watermark": outcome.watermark,
            "synced_through": started_at if outcome.drained else state.synced_through,
            "passes": state.passes + 1,
            "changes_applied": state.changes_applied + counts.changes_applied,
            "deletes_applied": state.deletes_applied + counts.deletes_applied,
            "reembedded": state.reembedded + counts.reembedded,
            "reused": state.reused + counts.reused,
            "skipped": state.skipped + counts.skipped,
            "busy_seconds": round(state.busy_seconds + (max(0.0, duration_s) if counts.applied else 0.0), 3),
            "full_check_at": outcome.full_check_at or state.full_check_at,
            "coherence": outcome.coherence[0] if outcome.coherence else state.coherence,
            "coherence_min": outcome.coherence[1] if outcome.coherence else state.coherence_min,
            "last_error": None,
            "last_error_reason": None,
            "updated_at": now,
        }
    )


def state_after_failure(state: SyncState, reason: str, message: str, now: datetime.datetime) -> SyncState:
    """``state`` with the failed pass's error (counters and watermark stay)."""
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    return state.model_copy(
        update={"last_error": message, "last_error_reason": reason[:64], "updated_at": now}
    )
