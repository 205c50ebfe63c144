"""What a sync pass adds to the state kept in the collection: counters, the watermark, how far
the collection is in sync, and the error of a failing pass."""

from __future__ import annotations

import datetime

from vector_operator.contract.sync import MAX_ERROR_CHARS, SyncState, Watermark
from vector_operator.worker.pass_accounting import (
    ApplyCounts,
    PassOutcome,
    fresh_state,
    state_after_failure,
    state_after_pass,
)

T0 = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
LATER = T0 + datetime.timedelta(seconds=3)
INITIAL = Watermark(kind="integer", value="7")


def test_a_state_of_this_plan_is_resumed_and_another_plans_is_not() -> None:
    ours = SyncState(plan_uid="uid-1", watermark=Watermark(kind="integer", value="9"), passes=4)
    assert fresh_state(ours, "uid-1", INITIAL) is ours
    assert fresh_state(ours, "uid-2", INITIAL) == SyncState(plan_uid="uid-2", watermark=INITIAL)
    assert fresh_state(None, "uid-2", None) == SyncState(plan_uid="uid-2")


def test_a_pass_that_applied_changes_adds_its_counts_and_its_time() -> None:
    before = SyncState(plan_uid="uid", passes=2, changes_applied=5, busy_seconds=1.5, last_error="boom",
                       last_error_reason="SourceUnavailable")  # fmt: skip
    counts = ApplyCounts(changes_applied=3, deletes_applied=1, reembedded=2, reused=1, skipped=4)
    outcome = PassOutcome(counts=counts, watermark=Watermark(kind="integer", value="12"))
    after = state_after_pass(before, outcome, started_at=T0, duration_s=0.5, now=LATER)
    assert (after.passes, after.changes_applied, after.deletes_applied) == (3, 8, 1)
    assert (after.reembedded, after.reused, after.skipped) == (2, 1, 4)
    assert after.busy_seconds == 2.0
    assert after.records_per_second == 4.5
    assert after.watermark == Watermark(kind="integer", value="12")
    assert (after.synced_through, after.updated_at) == (T0, LATER)
    assert (after.last_error, after.last_error_reason) == (None, None)
    assert after.full_check_at is None


def test_a_pass_that_applied_nothing_moves_synced_through_but_not_the_busy_time() -> None:
    before = SyncState(plan_uid="uid", passes=2, busy_seconds=1.5, synced_through=T0, full_check_at=T0)
    after = state_after_pass(before, PassOutcome(), started_at=LATER, duration_s=9.0, now=LATER)
    assert (after.passes, after.busy_seconds, after.synced_through, after.full_check_at) == (
        3,
        1.5,
        LATER,
        T0,
    )


def test_a_pass_that_did_not_drain_its_feed_does_not_claim_to_be_in_sync() -> None:
    before = SyncState(plan_uid="uid", synced_through=T0)
    outcome = PassOutcome(drained=False, full_check_at=LATER)
    after = state_after_pass(before, outcome, started_at=LATER, duration_s=1.0, now=LATER)
    assert (after.synced_through, after.full_check_at) == (T0, LATER)


def test_a_failure_is_recorded_cut_to_the_limit_and_nothing_else_changes() -> None:
    before = SyncState(plan_uid="uid", passes=3, watermark=INITIAL, synced_through=T0)
    after = state_after_failure(before, "SourceUnavailable", "x" * 5000, LATER)
    assert after.last_error is not None
    assert len(after.last_error) == MAX_ERROR_CHARS
    assert after.last_error.endswith("...")
    assert (after.last_error_reason, after.updated_at) == ("SourceUnavailable", LATER)
    assert (after.passes, after.watermark, after.synced_through) == (3, INITIAL, T0)
    assert SyncState.from_property(after.to_property()) == after
