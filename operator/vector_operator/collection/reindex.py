"""Re-indexing a filled collection without downtime, decided: when to start or resume the copy,
whether a finished copy may take over the alias, and when the collection it replaced may go.

The copy itself (pages of stored rows upserted into a new physical collection built with the new
index) is done by the Milvus adapter; progress lives in the VectorCollection's status
(``status.reindex``), so an operator restarted mid-copy continues after the last key it recorded.
Upserts make a page copied twice harmless."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from vector_operator.api.collection_reindex import ReindexSpec, ReindexState, ReindexStatus
from vector_operator.collection.milvus_layout import IndexLayout
from vector_operator.collection.physical_names import next_physical_name
from vector_operator.status_conditions import ConditionUpdate

RETRY_AFTER = datetime.timedelta(minutes=5)
"""A re-index that failed for a reason that may pass (the source changed during the copy) starts
again this long after."""
RETRYABLE = ("CountMismatch", "RowsDiffer", "PlanStarted")


@dataclass(frozen=True)
class ReindexSituation:
    alias: str
    serving: str  # the physical collection the alias points at
    names: Collection[str]  # the alias's physical collections that exist
    index: IndexLayout  # the index wanted
    entities: int  # in the serving collection now
    active_plans: Sequence[str]  # MigrationPlans working on this collection
    status: ReindexStatus | None
    now: datetime.datetime


@dataclass(frozen=True)
class Copy:
    """Copy (from the start, or on from ``status.resumeAfter``) into ``status.target``, then
    validate; a re-index interrupted while it validated goes straight to validation."""

    status: ReindexStatus
    resumed: bool
    discard: str | None = None  # an abandoned re-index's copy, dropped first
    replaced: str | None = None  # what the last re-index replaced, still kept: it is two versions back now


@dataclass(frozen=True)
class Hold:
    """Nothing to do now: the reason and message for UpToDate=False."""

    reason: str
    message: str


def next_step(situation: ReindexSituation) -> Copy | Hold:
    """Start, resume or hold the re-index of the serving collection onto ``situation.index``."""
    if situation.active_plans:
        return Hold(
            "ReindexWaiting",
            f"MigrationPlan {', '.join(situation.active_plans)} works on this collection: the index"
            f" change to {situation.index.describe()} is made when it has finished",
        )
    previous = situation.status
    same = (
        previous is not None
        and previous.index_fingerprint == situation.index.fingerprint
        and previous.source == situation.serving
    )
    if previous is not None and same and previous.state in (ReindexState.COPYING, ReindexState.VALIDATING):
        copying = previous.state is ReindexState.COPYING
        resumed = previous.model_copy(update={"resumes": previous.resumes + int(copying), "message": None})
        return Copy(resumed, resumed=True)
    if previous is not None and same and previous.state is ReindexState.ROLLED_BACK:
        return Hold(
            "ReindexRolledBack",
            f"{previous.fired}: the alias serves {previous.source} again; change spec.index to try another"
            " index",
        )
    if previous is not None and same and previous.state is ReindexState.FAILED:
        retry_at = (previous.finished_at or situation.now) + RETRY_AFTER
        if previous.message is None or not previous.message.startswith(RETRYABLE) or situation.now < retry_at:
            return Hold("ReindexFailed", f"re-index to {previous.index} failed: {previous.message}")
    discard = replaced = None
    if previous is not None and previous.target != situation.serving and previous.target in situation.names:
        # Only a copy this re-index made and never served or dropped: a failed copy was dropped
        # already, and its name may since belong to a MigrationPlan's collection.
        unfinished = previous.state in (
            ReindexState.COPYING,
            ReindexState.VALIDATING,
            ReindexState.ROLLED_BACK,
        )
        if unfinished and previous.source == situation.serving:
            discard = previous.target
    if (
        previous is not None
        and previous.state is ReindexState.SUCCEEDED
        and previous.target == situation.serving
        and previous.source in situation.names
    ):
        replaced = previous.source
    names = [n for n in situation.names if n not in (discard, replaced)]
    fresh = ReindexStatus(
        state=ReindexState.COPYING,
        source=situation.serving,
        target=next_physical_name(situation.alias, [*names, situation.serving]),
        index=situation.index.describe(),
        index_fingerprint=situation.index.fingerprint,
        total=situation.entities,
        started_at=situation.now.replace(microsecond=0),
    )
    return Copy(fresh, resumed=False, discard=discard, replaced=replaced)


@dataclass(frozen=True)
class CopyCheck:
    """What the adapter found comparing the copy with its source."""

    source_count: int
    target_count: int
    compared: int  # sampled rows compared field by field
    differing: Sequence[str]  # keys of sampled rows that differ or are missing in the copy
    recall_at_k: float | None


def check_failure(check: CopyCheck, spec: ReindexSpec) -> str | None:
    """Why the copy must not take over the alias, or None. Messages start with a reason word."""
    if check.source_count != check.target_count:
        return (
            f"CountMismatch: the copy holds {check.target_count} entities, the source"
            f" {check.source_count} (the source changed during the copy?); starting again in"
            f" {int(RETRY_AFTER.total_seconds() // 60)} min"
        )
    if check.differing:
        shown = ", ".join(check.differing[:5])
        return (
            f"RowsDiffer: {len(check.differing)} of {check.compared} sampled rows differ in the copy"
            f" ({shown})"
        )
    minimum, measured = spec.min_recall_at_k, check.recall_at_k
    if minimum is not None and measured is not None and measured < minimum:
        return (
            f"RecallBelowMinimum: recall@10 of the new index is {measured:.3f}, below"
            f" reindex.minRecallAtK {minimum}: choose other index parameters"
        )
    return None


def previous_to_retire(
    status: ReindexStatus | None,
    serving: str,
    names: Collection[str],
    now: datetime.datetime,
    retention: datetime.timedelta,
) -> str | None:
    """Once the retention passed: the collection a re-index replaced, or the copy a RollbackPolicy
    reverted; None while it is kept (or when it serves)."""
    if status is None or status.finished_at is None or now < status.finished_at + retention:
        return None
    kept = {ReindexState.SUCCEEDED: status.source, ReindexState.ROLLED_BACK: status.target}.get(status.state)
    return kept if kept is not None and kept != serving and kept in names else None


def condition(status: ReindexStatus) -> ConditionUpdate:
    """UpToDate while a re-index runs, or after it failed."""
    if status.state is ReindexState.FAILED:
        return ConditionUpdate.of(
            "UpToDate", False, "ReindexFailed", f"re-index to {status.index} failed: {status.message}"
        )
    return ConditionUpdate.of(
        "UpToDate",
        False,
        "Reindexing",
        f"{status.source} serves while {status.target} is built with {status.index}:"
        f" {status.copied}/{status.total} vectors copied",
    )
