"""Rollbacks as the MigrationPlan controller decides them: one action per step, recorded before the
next; pauses held in status (never in the spec); policies armed again once a human resumes; each
policy's own post-cutover window over figures measured on the new collection."""

from __future__ import annotations

import datetime

from tests.unit.plan_observations import (
    ALIAS,
    NOW,
    OWNER,
    condition,
    generating_status,
    job,
    milvus_view,
    plan_spec,
    policy,
    reasons,
    result,
    status,
    step,
)

from vector_operator.api.migrationplan import MigrationPhase, MigrationPlanStatus
from vector_operator.api.rollbackpolicy import RollbackAction, StepResult
from vector_operator.migration.effects import (
    DeleteJobs,
    DropPhysical,
    LaunchJob,
    RecordExecution,
    SwingAlias,
    UpdateTarget,
)
from vector_operator.migration.observation import JobState, Problem

V1, V2 = f"{ALIAS}__v1", f"{ALIAS}__v2"
GUARD = policy(
    "coherence-guard",
    [{"metric": "coherence", "below": 0.85, "forBatches": 2, "phases": ["Generating"]}],
    ["Pause", "Abort", "RevertAlias", "DropPartialCollection"],
)
PAUSE_GUARD = policy(
    "pause-guard", [{"metric": "coherence", "below": 0.95, "phases": ["Generating"]}], ["Pause"]
)
BAD = result(coherence=0.7)
MEDIOCRE = result(coherence=0.9)  # passes the gate (critical 0.85), fires the pause-guard (0.95)


def run_rollback(status: MigrationPlanStatus, **fields: object) -> list[MigrationPlanStatus]:
    """Steps a rollback to its end; the status after each step."""
    seen = []
    for _ in range(8):
        decision = step(status, **fields)  # type: ignore[arg-type]
        status = decision.status
        seen.append(status)
        if status.rollback is None or status.rollback.completed:
            break
    return seen


def test_a_firing_records_the_execution_first_then_runs_one_action_per_step() -> None:
    fired = step(generating_status(), jobs=(job(0, outcome=BAD), job(1, outcome=BAD)), policies=(GUARD,))
    record = fired.status.rollback
    assert record is not None
    assert (record.policy, record.metric, record.steps, record.completed) == (
        "coherence-guard",
        "coherence",
        [],
        False,
    )
    assert record.observed_value == 0.7
    assert "RollbackStarted" in reasons(fired)
    assert not any(isinstance(e, LaunchJob) for e in fired.effects)  # nothing new once it fires
    assert fired.again

    running = (job(2, JobState.RUNNING),)
    pause = step(fired.status, jobs=running, milvus=milvus_view(V1))
    assert [s.action for s in pause.status.rollback.steps] == [RollbackAction.PAUSE]  # type: ignore[union-attr]
    assert pause.status.pause is not None
    assert pause.effects == []
    abort = step(pause.status, jobs=running, milvus=milvus_view(V1))
    assert [s.action for s in abort.status.rollback.steps] == [RollbackAction.PAUSE, RollbackAction.ABORT]  # type: ignore[union-attr]
    assert abort.effects == [DeleteJobs(("backfill-2",))]
    revert = step(abort.status, milvus=milvus_view(V1))
    assert revert.status.rollback.steps[-1].result is StepResult.SKIPPED  # type: ignore[union-attr]
    assert revert.effects == []  # the alias never left v1
    drop = step(revert.status, milvus=milvus_view(V1))
    assert drop.effects == [DropPhysical(ALIAS, V2, OWNER)]
    finish = step(drop.status, milvus=milvus_view(V1, V1))
    assert finish.status.phase is MigrationPhase.ROLLED_BACK
    assert condition(finish, "RolledBack").reason == "PolicyFired"
    (record_execution,) = [e for e in finish.effects if isinstance(e, RecordExecution)]
    assert record_execution.policy == "coherence-guard"
    assert [s.action for s in record_execution.execution.steps] == list(GUARD.spec.actions)


def test_a_job_that_finished_while_the_policy_fired_is_deleted_when_the_rollback_ends() -> None:
    # Found by `make chaos`: batch 9 finished in the step the policy fired; Abort stops only running
    # Jobs, and a RolledBack plan no longer looks at its Jobs, so it stayed with its pod for good.
    fired = step(generating_status(), jobs=(job(0, outcome=BAD), job(1, outcome=BAD)), policies=(GUARD,))
    statuses = run_rollback(fired.status, milvus=milvus_view(V1))
    last = statuses[-2]  # before the step that finishes the rollback
    late = (job(9), job(10, JobState.FAILED))
    finish = step(last, jobs=late, milvus=milvus_view(V1, V1))
    assert finish.status.phase is MigrationPhase.ROLLED_BACK
    assert [e for e in finish.effects if isinstance(e, DeleteJobs)] == [
        DeleteJobs(("backfill-9", "backfill-10"))
    ]


def test_a_restart_in_the_middle_finishes_the_rest_and_repeats_nothing() -> None:
    fired = step(generating_status(), jobs=(job(0, outcome=BAD), job(1, outcome=BAD)), policies=(GUARD,))
    paused = step(fired.status, milvus=milvus_view(V1))
    # The operator restarts here: the next step reads the record and runs Abort, not Pause again.
    statuses = run_rollback(paused.status, milvus=milvus_view(V1))
    actions = [s.action for s in statuses[-1].rollback.steps]  # type: ignore[union-attr]
    assert actions == [
        RollbackAction.PAUSE,
        RollbackAction.ABORT,
        RollbackAction.REVERT_ALIAS,
        RollbackAction.DROP_PARTIAL_COLLECTION,
    ]


def test_a_revert_is_a_compare_and_swap_also_when_its_swing_landed_before_its_record() -> None:
    record = {
        "policy": "latency-guard", "trigger": "searchLatencyP95Ms above 5", "metric": "searchLatencyP95Ms",
        "threshold": 5.0, "observedValue": 9.0, "phase": "PostCutover", "actions": ["RevertAlias"],
        "steps": [], "executedAt": NOW.isoformat(),
    }  # fmt: skip
    succeeded = generating_status(phase="Succeeded", completedAt=NOW.isoformat(), rollback=record)
    swing = [SwingAlias(ALIAS, to=V1, expected=V2), UpdateTarget(V1, V2)]
    # Already on v1 (the swing landed, its record did not): the same swap, which leaves it there.
    decision = step(succeeded, milvus=milvus_view(V1))
    assert decision.effects == swing
    assert decision.status.rollback.steps[0].result is StepResult.SUCCEEDED  # type: ignore[union-attr]
    assert step(succeeded, milvus=milvus_view(V2)).effects == swing
    elsewhere = step(succeeded, milvus=milvus_view(f"{ALIAS}__v3", V1, V2, f"{ALIAS}__v3"))
    assert elsewhere.effects == []  # another plan moved it since: not ours to revert
    assert elsewhere.status.rollback.steps[0].result is StepResult.SKIPPED  # type: ignore[union-attr]


def test_a_policy_pause_lives_in_status_and_a_human_resume_arms_the_policies_again() -> None:
    fired = step(generating_status(), jobs=(job(0, outcome=MEDIOCRE),), policies=(PAUSE_GUARD,))
    statuses = run_rollback(fired.status, milvus=milvus_view(V1))
    paused = statuses[-1]
    assert paused.pause is not None
    assert paused.pause.by == "RollbackPolicy/pause-guard"
    held = step(paused, policies=(PAUSE_GUARD,), jobs=(job(1, outcome=MEDIOCRE),))
    assert held.status.phase is MigrationPhase.PAUSED
    assert held.status.rollback == paused.rollback  # it does not fire again while paused
    assert not any(isinstance(e, LaunchJob) for e in held.effects)
    assert "spec.paused" in condition(held, "Progressing").message

    # A human takes the pause over with spec.paused, then resumes by clearing it.
    taken = step(held.status, plan_spec(paused=True), policies=(PAUSE_GUARD,))
    assert taken.status.pause is None
    assert "PauseTakenOver" in reasons(taken)
    assert taken.status.phase is MigrationPhase.PAUSED
    resumed = step(taken.status, plan_spec(paused=False), policies=(PAUSE_GUARD,))
    assert resumed.status.rollback.resumed_at is not None  # type: ignore[union-attr]
    assert resumed.status.guard_armed_after == resumed.status.batches_folded == 2
    assert "PoliciesArmed" in reasons(resumed)
    assert any(isinstance(e, LaunchJob) for e in resumed.effects)
    # Armed again: the batches that fired once do not fire twice, a new bad batch does.
    calm = step(resumed.status, policies=(PAUSE_GUARD,), jobs=(job(2),))
    assert calm.status.rollback == resumed.status.rollback
    again = step(calm.status, policies=(PAUSE_GUARD,), jobs=(job(3, outcome=MEDIOCRE),))
    assert again.status.rollback is not None
    assert (again.status.rollback.completed, again.status.rollback.resumed_at) == (False, None)  # a new one
    assert "RollbackStarted" in reasons(again)


def test_removing_status_pause_resumes_too() -> None:
    fired = step(generating_status(), jobs=(job(0, outcome=MEDIOCRE),), policies=(PAUSE_GUARD,))
    paused = run_rollback(fired.status, milvus=milvus_view(V1))[-1]
    cleared = paused.model_copy(update={"pause": None})
    resumed = step(cleared, policies=(PAUSE_GUARD,))
    assert "PoliciesArmed" in reasons(resumed)
    assert resumed.status.phase is MigrationPhase.GENERATING


def test_spec_rollback_works_after_an_earlier_pause() -> None:
    record = {
        "policy": "pause-guard", "trigger": "coherence below 0.85", "metric": "coherence", "threshold": 0.85,
        "observedValue": 0.7, "phase": "Generating", "actions": ["Pause"],
        "steps": [{"action": "Pause", "result": "Succeeded"}], "executedAt": NOW.isoformat(),
        "completed": True, "resumedAt": NOW.isoformat(),
    }  # fmt: skip
    done = generating_status(phase="Succeeded", completedAt=NOW.isoformat(), rollback=record)
    started = step(done, plan_spec(rollback=True))
    assert started.status.rollback is not None
    assert started.status.rollback.policy == "manual"
    statuses = run_rollback(started.status, spec=plan_spec(rollback=True), milvus=milvus_view(V2))
    assert statuses[-1].phase is MigrationPhase.ROLLED_BACK


def test_each_policy_watches_its_own_window_over_the_new_collections_figures() -> None:
    short = policy(
        "short",
        [{"metric": "recallAtK", "below": 0.9, "phases": ["PostCutover"]}],
        ["RevertAlias"],
        postCutoverWindow="1m",
    )
    long = policy(
        "long",
        [{"metric": "searchLatencyP95Ms", "above": 50, "phases": ["PostCutover"]}],
        ["RevertAlias"],
        postCutoverWindow="1h",
    )
    done = generating_status(
        phase="Succeeded", completedAt=NOW.isoformat(),
        postCutover={"windowEndsAt": (NOW + datetime.timedelta(hours=1)).isoformat()},
    )  # fmt: skip
    later = NOW + datetime.timedelta(minutes=5)
    # recall fell, but the short window closed: nothing; latency measured on v2 is fine: nothing.
    calm = step(
        done,
        now=later,
        policies=(short, long),
        milvus=milvus_view(V2, entities=200, recall_at_k=0.5, search_latency_p95_ms=3.0),
    )
    assert calm.status.rollback is None
    assert calm.status.post_cutover is not None
    assert (calm.status.post_cutover.recall_at_k, calm.status.post_cutover.search_latency_p95_ms) == (
        0.5,
        3.0,
    )
    slow = step(
        done,
        now=later,
        policies=(short, long),
        milvus=milvus_view(V2, entities=200, recall_at_k=1.0, search_latency_p95_ms=80.0),
    )
    assert slow.status.rollback is not None
    assert (slow.status.rollback.policy, slow.status.rollback.phase) == ("long", "PostCutover")


def test_spec_abort_stops_the_jobs_drops_what_was_being_filled_and_leaves_the_alias() -> None:
    aborting = plan_spec(abort=True)
    running = (job(2, JobState.RUNNING),)
    started = step(generating_status(), aborting, jobs=running)
    assert started.status.rollback is not None
    assert (started.status.rollback.policy, started.status.rollback.trigger) == ("manual", "spec.abort: true")
    statuses = run_rollback(started.status, spec=aborting, jobs=running, milvus=milvus_view(V1))
    ended = statuses[-1]
    assert ended.phase is MigrationPhase.ROLLED_BACK
    rolled_back = next(c for c in ended.conditions or [] if c.type == "RolledBack")
    assert rolled_back.reason == "AbortRequested"
    assert [(s.action, s.result) for s in ended.rollback.steps] == [  # type: ignore[union-attr]
        (RollbackAction.ABORT, StepResult.SUCCEEDED),
        (RollbackAction.DROP_PARTIAL_COLLECTION, StepResult.SUCCEEDED),
    ]
    assert step(ended, aborting).effects == []  # ended: it is not aborted again


def test_spec_abort_ends_a_plan_that_waits_on_a_problem() -> None:
    # Planning cannot reach its source: exactly the plan an SRE wants to stop. The abort is recorded
    # before the problem is looked at, and, with no collection of its own to drop, needs no Milvus.
    aborting = plan_spec(abort=True)
    unreachable = Problem("SourceUnavailable", "could not connect to the database")
    started = step(status(phase="Planning"), aborting, problem=unreachable, target=None, milvus=None)
    assert started.status.rollback is not None
    assert "SourceUnavailable" not in reasons(started)
    statuses = run_rollback(started.status, spec=aborting, target=None, milvus=None)
    ended = statuses[-1]
    assert ended.phase is MigrationPhase.ROLLED_BACK
    assert [(s.action, s.result) for s in ended.rollback.steps] == [  # type: ignore[union-attr]
        (RollbackAction.ABORT, StepResult.SUCCEEDED),
        (RollbackAction.DROP_PARTIAL_COLLECTION, StepResult.SKIPPED),
    ]
    # the same problem seen while the recorded abort runs blocks it, as it would any step
    blocked = step(started.status, aborting, problem=unreachable)
    assert blocked.status.rollback == started.status.rollback
    assert "SourceUnavailable" in reasons(blocked)
