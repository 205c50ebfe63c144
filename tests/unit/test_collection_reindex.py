"""When a re-index starts, resumes, waits or retries, whether its copy may take over the alias,
and when the collection it replaced goes: the pure half of a re-index."""

from __future__ import annotations

import datetime

import pytest

from vector_operator.api.collection_reindex import ReindexSpec, ReindexState, ReindexStatus
from vector_operator.api.rollbackpolicy import GuardedPhase, RollbackPolicySpec, TriggerMetric
from vector_operator.collection.milvus_layout import IndexLayout
from vector_operator.collection.reindex import (
    Copy,
    CopyCheck,
    Hold,
    ReindexSituation,
    check_failure,
    condition,
    next_step,
    previous_to_retire,
)
from vector_operator.collection.reindex_guard import (
    Guard,
    armed_after_swing,
    execution,
    firing,
    steps_after_swing,
    steps_before_swing,
)

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
HNSW = IndexLayout("HNSW", "COSINE", {"M": 16, "efConstruction": 200})


def situation(status: ReindexStatus | None = None, **changes: object) -> ReindexSituation:
    values: dict[str, object] = {
        "alias": "nodes",
        "serving": "nodes__v2",
        "names": ("nodes__v1", "nodes__v2"),
        "index": HNSW,
        "entities": 5000,
        "active_plans": (),
        "status": status,
        "now": NOW,
    }
    values.update(changes)
    return ReindexSituation(**values)  # type: ignore[arg-type]


def running(**changes: object) -> ReindexStatus:
    values: dict[str, object] = {
        "state": ReindexState.COPYING,
        "source": "nodes__v2",
        "target": "nodes__v3",
        "index": HNSW.describe(),
        "index_fingerprint": HNSW.fingerprint,
        "total": 5000,
        "copied": 2000,
        "resume_after": "1999",
    }
    values.update(changes)
    return ReindexStatus.model_validate(values)


def test_a_first_reindex_copies_into_the_next_version_from_the_start() -> None:
    step = next_step(situation())
    assert isinstance(step, Copy)
    assert not step.resumed
    assert step.discard is None
    assert (step.status.source, step.status.target) == ("nodes__v2", "nodes__v3")
    assert (step.status.total, step.status.copied, step.status.resume_after) == (5000, 0, None)
    assert step.status.index_fingerprint == HNSW.fingerprint


def test_an_interrupted_copy_resumes_after_the_last_key_it_recorded() -> None:
    step = next_step(situation(running(), names=("nodes__v1", "nodes__v2", "nodes__v3")))
    assert isinstance(step, Copy)
    assert step.resumed
    assert (step.status.target, step.status.copied, step.status.resume_after) == ("nodes__v3", 2000, "1999")
    assert step.status.resumes == 1
    assert (step.discard, step.replaced) == (None, None)
    # One interrupted while it validated validates again, without copying (nor counting a resume).
    validating = next_step(situation(running(state=ReindexState.VALIDATING)))
    assert isinstance(validating, Copy)
    assert validating.resumed
    assert validating.status.state is ReindexState.VALIDATING
    assert validating.status.resumes == 0


def test_a_different_index_abandons_the_unfinished_copy_and_starts_anew() -> None:
    other = IndexLayout("IVF_FLAT", "COSINE", {"nlist": 128})
    step = next_step(situation(running(), index=other, names=("nodes__v1", "nodes__v2", "nodes__v3")))
    assert isinstance(step, Copy)
    assert not step.resumed
    assert step.discard == "nodes__v3"
    assert step.status.target == "nodes__v3"  # the name is free again once the abandoned one is dropped
    assert step.status.copied == 0


def test_a_running_migration_plan_holds_the_reindex() -> None:
    step = next_step(situation(active_plans=("backfill",)))
    assert isinstance(step, Hold)
    assert step.reason == "ReindexWaiting"
    assert "MigrationPlan backfill" in step.message


def test_a_failure_that_may_pass_is_retried_later_and_one_that_will_not_is_held() -> None:
    finished = NOW - datetime.timedelta(minutes=1)
    mismatch = running(state=ReindexState.FAILED, message="CountMismatch: ...", finished_at=finished)
    assert isinstance(next_step(situation(mismatch)), Hold)
    later = next_step(situation(mismatch, now=NOW + datetime.timedelta(minutes=10)))
    assert isinstance(later, Copy)
    assert not later.resumed
    recall = running(state=ReindexState.FAILED, message="RecallBelowMinimum: ...", finished_at=finished)
    held = next_step(situation(recall, now=NOW + datetime.timedelta(days=1)))
    assert isinstance(held, Hold)
    assert held.reason == "ReindexFailed"


def check(**changes: object) -> CopyCheck:
    values: dict[str, object] = {
        "source_count": 5000,
        "target_count": 5000,
        "compared": 200,
        "differing": (),
        "recall_at_k": 0.97,
    }
    values.update(changes)
    return CopyCheck(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("found", "spec", "reason"),
    [
        (check(), ReindexSpec(), None),
        (check(target_count=4990), ReindexSpec(), "CountMismatch"),
        (check(differing=("17",)), ReindexSpec(), "RowsDiffer"),
        (check(recall_at_k=0.5), ReindexSpec(), None),  # recorded, not refused, without a minimum
        (check(recall_at_k=0.5), ReindexSpec(min_recall_at_k=0.9), "RecallBelowMinimum"),
    ],
)
def test_a_copy_takes_over_only_when_complete_identical_and_good_enough(
    found: CopyCheck, spec: ReindexSpec, reason: str | None
) -> None:
    failure = check_failure(found, spec)
    assert (failure.split(":")[0] if failure else None) == reason


def test_what_a_reindex_left_goes_after_its_retention_only() -> None:
    done = running(state=ReindexState.SUCCEEDED, finished_at=NOW)
    names = ("nodes__v2", "nodes__v3")
    day = datetime.timedelta(hours=24)
    assert previous_to_retire(done, "nodes__v3", names, NOW + datetime.timedelta(hours=23), day) is None
    assert previous_to_retire(done, "nodes__v3", names, NOW + day, day) == "nodes__v2"
    # Never the one that serves (something moved the alias back).
    assert previous_to_retire(done, "nodes__v2", names, NOW + day, day) is None
    # A copy a RollbackPolicy reverted is kept for a look, then goes too.
    reverted = running(state=ReindexState.ROLLED_BACK, finished_at=NOW)
    assert previous_to_retire(reverted, "nodes__v2", names, NOW + day, day) == "nodes__v3"
    failed = running(state=ReindexState.FAILED, finished_at=NOW)
    assert previous_to_retire(failed, "nodes__v2", names, NOW + day, day) is None  # dropped when it failed


def test_a_failed_copy_is_never_discarded_by_name_later_and_a_twice_replaced_collection_goes() -> None:
    """A failed copy was dropped when it failed; its name may have been reused since (a
    MigrationPlan's new collection): the next re-index must not drop that."""
    failed = running(
        state=ReindexState.FAILED, message="RecallBelowMinimum: ...", source="nodes__v1", target="nodes__v2"
    )
    other = IndexLayout("IVF_FLAT", "COSINE", {"nlist": 128})
    step = next_step(situation(failed, index=other, serving="nodes__v3", names=("nodes__v2", "nodes__v3")))
    assert isinstance(step, Copy)
    assert step.discard is None
    assert step.status.target == "nodes__v4"
    # After a successful re-index, the next one drops what the first replaced (two versions back).
    done = running(state=ReindexState.SUCCEEDED, source="nodes__v1", target="nodes__v2")
    again = next_step(situation(done, index=other, serving="nodes__v2", names=("nodes__v1", "nodes__v2")))
    assert isinstance(again, Copy)
    assert (again.replaced, again.discard) == ("nodes__v1", None)


def test_up_to_date_says_how_far_the_copy_is_and_why_it_failed() -> None:
    progress = condition(running())
    assert (progress.status, progress.reason) == ("False", "Reindexing")
    assert "2000/5000 vectors copied" in progress.message
    failed = condition(running(state=ReindexState.FAILED, message="RowsDiffer: 1 of 200"))
    assert failed.reason == "ReindexFailed"
    assert "RowsDiffer" in failed.message


# -- RollbackPolicies watching a re-index ------------------------------------------------------------


def guard(name: str, triggers: list[dict[str, object]], actions: list[str], window: str = "30m") -> Guard:
    spec = RollbackPolicySpec.model_validate(
        {"collectionNames": ["nodes"], "triggers": triggers, "actions": actions, "postCutoverWindow": window}
    )
    return Guard(name, spec)


RECALL = {"metric": "recallAtK", "below": 0.95, "phases": ["Validating"]}
LATENCY = {"metric": "searchLatencyP95Ms", "above": 50, "phases": ["PostCutover"]}


def test_a_policy_fires_on_the_metrics_a_reindex_measures_in_the_phase_it_names() -> None:
    guards = [guard("slow", [LATENCY], ["RevertAlias"]), guard("poor", [RECALL], ["Abort"])]
    measured = {TriggerMetric.RECALL_AT_K: 0.90, TriggerMetric.SEARCH_LATENCY_P95_MS: 80.0}
    fired = firing(guards, GuardedPhase.VALIDATING, measured)
    assert fired is not None
    assert (fired.guard.name, fired.metric, fired.observed) == ("poor", TriggerMetric.RECALL_AT_K, 0.90)
    assert fired.summary() == "RollbackPolicy poor: recallAtK below 0.95 (observed 0.9)"
    assert [s.result.value for s in steps_before_swing(fired)] == ["Succeeded"]

    after = firing(guards, GuardedPhase.POST_CUTOVER, {TriggerMetric.SEARCH_LATENCY_P95_MS: 80.0})
    assert after is not None
    assert after.guard.name == "slow"
    assert firing(guards, GuardedPhase.POST_CUTOVER, {TriggerMetric.SEARCH_LATENCY_P95_MS: 20.0}) is None
    # Batch metrics mean nothing to a re-index.
    coherence = guard("c", [{"metric": "coherence", "below": 0.9}], ["Abort"])
    assert firing([coherence], GuardedPhase.VALIDATING, {TriggerMetric.COHERENCE: 0.1}) is None


def test_after_the_swing_a_policy_is_armed_for_its_window_and_records_what_it_did() -> None:
    short, long = (
        guard("short", [LATENCY], ["RevertAlias"], "10m"),
        guard("long", [LATENCY], ["RevertAlias"], "2h"),
    )
    assert armed_after_swing([short, long], NOW, NOW + datetime.timedelta(minutes=30)) == [long]
    fired = firing([long], GuardedPhase.POST_CUTOVER, {TriggerMetric.SEARCH_LATENCY_P95_MS: 99.0})
    assert fired is not None
    steps = steps_after_swing(fired, "alias nodes points at nodes__v2 again", None)
    assert [(s.action.value, s.result.value) for s in steps] == [("RevertAlias", "Succeeded")]
    record = execution(fired, "nodes", steps, NOW)
    assert (record.collection, record.plan, record.phase) == ("nodes", "", GuardedPhase.POST_CUTOVER)


def test_a_reindex_rolled_back_by_a_policy_is_not_started_again_for_the_same_index() -> None:
    rolled_back = running(state=ReindexState.ROLLED_BACK, fired="RollbackPolicy slow: ...")
    held = next_step(situation(rolled_back))
    assert isinstance(held, Hold)
    assert held.reason == "ReindexRolledBack"
    other = IndexLayout("IVF_FLAT", "COSINE", {"nlist": 128})
    assert isinstance(next_step(situation(rolled_back, index=other, names=("nodes__v2", "nodes__v3"))), Copy)
