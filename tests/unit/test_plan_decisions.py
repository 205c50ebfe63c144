"""The MigrationPlan controller's decisions, phase by phase, off the happy path: from one
observation, the typed status, the effects and the Events. No cluster, Milvus or database."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from tests.unit.plan_observations import (
    ALIAS,
    IMAGE,
    INSTALLATION,
    NOW,
    OWNER,
    TARGET,
    condition,
    failed_result,
    generating_status,
    job,
    milvus_view,
    plan_spec,
    ready,
    reasons,
    result,
    status,
    step,
)

from vector_operator.api.migrationplan import MAX_RECOMMENDATIONS, MigrationPhase, Throughput
from vector_operator.contract.result import Anomalies, WorkerResult
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.effects import (
    CreatePhysical,
    Decision,
    DeleteJobs,
    LaunchJob,
    PinTarget,
    RecordHistory,
    StoreBatchPlan,
    SwingAlias,
    UpdateTarget,
)
from vector_operator.migration.observation import JobState, SiblingPlan
from vector_operator.migration.schedule import needs_timer, step_due

V1, V2 = f"{ALIAS}__v1", f"{ALIAS}__v2"


def accounts(decision: Decision) -> set[str | None]:
    """The ServiceAccounts of the Jobs ``decision`` launches."""
    jobs = [e.manifest for e in decision.effects if isinstance(e, LaunchJob)]
    assert jobs
    return {job["spec"]["template"]["spec"].get("serviceAccountName") for job in jobs}


def launched(decision: object) -> list[int]:
    return [e.index for e in decision.effects if isinstance(e, LaunchJob)]  # type: ignore[attr-defined]


# -- planning -------------------------------------------------------------------------------------


def test_an_empty_source_ends_the_plan_and_never_moves_the_alias() -> None:
    empty = BatchPlan(records_total=0, records_per_batch=50, starts=())
    decision = step(status(), batch_plan=empty, scanned=True)
    assert decision.status.phase is MigrationPhase.FAILED
    assert condition(decision, "Failed").reason == "SourceEmpty"
    assert "nothing to migrate" in condition(decision, "Failed").message
    assert decision.effects == []  # no batch plan stored, no collection, no alias


def test_rows_with_a_null_key_are_counted_as_skipped_once() -> None:
    with_nulls = BatchPlan(records_total=200, records_per_batch=50, starts=(51, 101, 151), null_keys=7)
    manual = plan_spec(approval="Manual")
    decision = step(status(), manual, batch_plan=with_nulls, scanned=True)
    progress = decision.status.progress
    assert progress is not None
    assert (progress.records_read, progress.records_skipped, progress.records_total) == (7, 7, 207)
    assert progress.skipped_by_reason == {"nullKey": 7}
    assert StoreBatchPlan(with_nulls) in decision.effects
    assert condition(decision, "Approved").reason == "AwaitingApproval"
    again = step(decision.status, manual, batch_plan=with_nulls)  # the next look: counted once only
    assert again.status.progress is not None
    assert again.status.progress.records_skipped == 7
    only_nulls = BatchPlan(records_total=0, records_per_batch=50, starts=(), null_keys=5)
    ended = step(status(), batch_plan=only_nulls, scanned=True)
    assert condition(ended, "Failed").reason == "NothingToMigrate"


def test_an_image_or_service_account_the_installation_does_not_allow_is_refused_before_anything() -> None:
    rogue = plan_spec(batching={"podTemplate": {"image": "evil.example/miner:latest"}})
    decision = step(status(phase="Planning"), rogue)
    assert condition(decision, "Progressing").reason == "ImageNotAllowed"
    assert IMAGE in condition(decision, "Progressing").message
    assert decision.status.phase is MigrationPhase.PLANNING
    assert decision.effects == []
    # ... and mid-run: no Job is launched with it.
    assert launched(step(generating_status(), rogue)) == []
    account = plan_spec(batching={"podTemplate": {"serviceAccountName": "cluster-admin"}})
    assert (
        condition(step(status(phase="Planning"), account), "Progressing").reason == "ServiceAccountNotAllowed"
    )
    allowed = plan_spec(batching={"podTemplate": {"serviceAccountName": "embedder"}})
    assert accounts(step(generating_status(), allowed)) == {"embedder"}


def test_jobs_run_as_the_installations_worker_service_account_unless_the_plan_names_an_allowed_one() -> None:
    assert accounts(step(generating_status())) == {None}  # the namespace's default
    installed = dataclasses.replace(
        INSTALLATION,
        worker_service_account="vector-worker",
        allowed_service_accounts=INSTALLATION.allowed_service_accounts | {"vector-worker"},
    )
    assert accounts(step(generating_status(), installation=installed)) == {"vector-worker"}
    chosen = plan_spec(batching={"podTemplate": {"serviceAccountName": "embedder"}})
    assert accounts(step(generating_status(), chosen, installation=installed)) == {"embedder"}


def test_one_plan_at_a_time_per_collection() -> None:
    earlier = NOW - datetime.timedelta(hours=2)
    running = SiblingPlan("first", earlier, MigrationPhase.GENERATING)
    decision = step(status(phase="Planning"), siblings=(running,))
    assert condition(decision, "Progressing").reason == "TargetBusy"
    assert "MigrationPlan first (Generating)" in condition(decision, "Progressing").message
    assert decision.status.phase is MigrationPhase.PLANNING
    # An earlier plan that would prepare now goes first; a later one waits for this one.
    assert (
        condition(
            step(status(phase="Planning"), siblings=(SiblingPlan("a", earlier, None),)), "Progressing"
        ).reason
        == "TargetBusy"
    )
    later = SiblingPlan("b", NOW, MigrationPhase.PLANNING)
    assert step(status(phase="Planning"), siblings=(later,)).status.phase is MigrationPhase.PREPARING
    unapproved = SiblingPlan("c", earlier, MigrationPhase.PLANNING, ready=False)
    assert step(status(phase="Planning"), siblings=(unapproved,)).status.phase is MigrationPhase.PREPARING


# -- preparing ------------------------------------------------------------------------------------


def test_preparing_names_the_new_collection_before_creating_it_then_pins_the_target() -> None:
    first = step(status(phase="Preparing"), milvus=milvus_view(V1, V1))
    assert first.status.new_physical_collection == V2
    assert first.effects == []  # named first: a restart never creates a second one
    assert first.again
    second = step(first.status, milvus=milvus_view(V1, V1))
    assert PinTarget(TARGET.generation, TARGET.spec) in second.effects
    assert any(isinstance(e, CreatePhysical) and e.name == V2 and e.owner == OWNER for e in second.effects)
    assert second.status.target is not None
    assert second.status.target.generation == TARGET.generation
    assert second.status.phase is MigrationPhase.GENERATING


def test_a_collection_another_vectorcollection_owns_is_never_filled() -> None:
    from vector_operator.collection.ownership import Owner
    from vector_operator.migration.observation import MilvusView

    theirs = MilvusView(V1, {V1: OWNER, V2: Owner("other", "articles", "x")})
    decision = step(status(phase="Preparing"), milvus=theirs)
    assert condition(decision, "Progressing").reason == "Conflict"
    assert decision.effects == []


def test_a_plan_waits_for_a_reindex_and_refuses_an_index_the_server_does_not_build() -> None:
    import dataclasses

    reindexing = dataclasses.replace(
        TARGET, conditions=(ready(), ready("UpToDate", "Reindexing", holds=False))
    )
    waiting = step(status(phase="Preparing"), milvus=milvus_view(V1, V1), target=reindexing)
    assert condition(waiting, "Progressing").reason == "TargetReindexing"
    assert waiting.effects == []
    assert waiting.status.new_physical_collection is None  # the re-index takes the next name first

    # The copy's progress is written at once, before any condition: it is enough to wait on.
    copying = dataclasses.replace(TARGET, reindexing="articles__v3 (HNSW/COSINE (M=16))")
    assert (
        condition(
            step(status(phase="Preparing"), milvus=milvus_view(V1, V1), target=copying), "Progressing"
        ).reason
        == "TargetReindexing"
    )

    unsupported = dataclasses.replace(
        TARGET, conditions=(ready(), ready("Indexed", "IndexTypeUnsupported", holds=False))
    )
    refused = step(status(phase="Preparing"), milvus=milvus_view(V1, V1), target=unsupported)
    assert condition(refused, "Progressing").reason == "IndexTypeUnsupported"
    assert refused.effects == []


# -- generating -----------------------------------------------------------------------------------


def test_a_batch_that_exhausts_its_retries_does_not_doom_the_others() -> None:
    jobs = (job(0), job(1, JobState.FAILED, failed_result()))
    decision = step(generating_status(), jobs=jobs)
    assert decision.status.failed_ranges == "1"
    assert decision.status.completed_ranges == "0"
    assert decision.status.phase is MigrationPhase.GENERATING
    assert launched(decision) == [2, 3]  # the others still run
    assert "BatchFailed" in reasons(decision)
    # When the rest are done, the plan ends Failed listing only the failed range.
    done = decision.status.model_copy(
        update={"completed_ranges": "0,2-3", "phase": MigrationPhase.GENERATING}
    )
    ended = step(done, jobs=())
    assert ended.status.phase is MigrationPhase.FAILED
    failed = condition(ended, "Failed")
    assert failed.reason == "BatchesFailed"
    assert "batches 1 failed for good" in failed.message
    assert "raise spec.retry" in failed.message


def test_the_workers_findings_outlive_their_jobs_bounded_with_an_event_when_new() -> None:
    def advised(index: int, texts: list[str], duplicates: int = 0) -> WorkerResult:
        finding = result().model_copy(deep=True)
        finding.recommendations = texts
        assert finding.quality is not None
        finding.quality.anomalies = Anomalies(duplicate_vectors=duplicates)
        return finding

    first = step(generating_status(), jobs=(job(0, outcome=advised(0, ["raise batchSize to 64"], 3)),))
    assert first.status.recommendations == ["raise batchSize to 64"]
    assert first.status.anomalies is not None
    assert first.status.anomalies.duplicate_vectors == 3
    assert [r for r in reasons(first) if r != "Generating"][:2] == ["Recommendation", "AnomaliesFound"]
    (history,) = [e for e in first.effects if isinstance(e, RecordHistory)]
    assert [record.batch for record in history.records] == [0]

    # the same advice with other figures replaces the old text, quietly; new advice is an Event
    again = step(
        first.status,
        jobs=(job(1, outcome=advised(1, ["raise batchSize to 128", "set maxSeqLength 256"], 2)),),
    )
    assert again.status.recommendations == ["raise batchSize to 128", "set maxSeqLength 256"]
    assert again.status.anomalies is not None
    assert again.status.anomalies.duplicate_vectors == 5
    (event,) = [e for e in again.events if e.reason == "Recommendation"]
    assert event.message == "batch 1: set maxSeqLength 256"

    many = [f"advice number {chr(97 + i)}" for i in range(15)]
    bounded = step(again.status, jobs=(job(2, outcome=advised(2, many)),))
    assert len(bounded.status.recommendations or []) == MAX_RECOMMENDATIONS
    assert "AnomaliesFound" not in reasons(bounded)  # nothing found: no Event


def test_spec_retry_runs_only_the_failed_ranges_again_under_new_job_names() -> None:
    failed = generating_status(
        phase="Failed", completedRanges="0,2-3", failedRanges="1",
        progress={"recordsDone": 150, "recordsRead": 150},
    )  # fmt: skip
    quiet = step(failed)
    assert quiet.effects == []
    assert quiet.status.phase is MigrationPhase.FAILED
    retrying = step(failed, plan_spec(retry=1), jobs=(job(1, JobState.FAILED, failed_result()),))
    assert retrying.status.phase is MigrationPhase.GENERATING
    assert retrying.status.observed_retry == 1
    assert retrying.status.failed_ranges is None
    assert "Retrying" in reasons(retrying)
    again = step(retrying.status, plan_spec(retry=1), jobs=(job(1, JobState.FAILED, failed_result()),))
    assert DeleteJobs(("backfill-1",)) in again.effects  # the earlier round's Job goes, unread
    (launch,) = [e for e in again.effects if isinstance(e, LaunchJob)]
    assert launch.index == 1
    assert launch.manifest["metadata"]["name"] == "backfill-1-r1"


def test_critical_coherence_is_judged_on_the_plans_mean_at_validation_not_per_batch() -> None:
    # One batch's mean over a small sample is noisy: it is reported, and the plan's mean decides.
    decision = step(generating_status(), jobs=(job(0, outcome=result(coherence=0.80)), job(1)))
    assert decision.status.completed_ranges == "0-1"
    assert decision.status.recent_batches is not None  # what the triggers read
    assert [(b.batch, b.coherence) for b in decision.status.recent_batches] == [(0, 0.80), (1, 0.99)]
    low = generating_status(
        phase="Validating", completedRanges="0-3",
        progress={"recordsDone": 200, "recordsRead": 200}, quality={"coherence": {"mean": 0.8}},
    )  # fmt: skip
    failed = step(low, milvus=milvus_view(V1, entities=200))
    assert condition(failed, "Failed").reason == "ValidationFailed"
    assert "coherence 0.800 is below the critical level 0.85" in condition(failed, "Failed").message


def test_a_plan_whose_first_batches_embed_nothing_stops_early_and_stops_its_jobs() -> None:
    empty = result(read=50, skipped={"nullText": 50})
    jobs = (job(0, outcome=empty), job(1, outcome=empty), job(2, JobState.RUNNING))
    decision = step(generating_status(), jobs=jobs)
    assert decision.status.phase is MigrationPhase.FAILED
    failed = condition(decision, "Failed")
    assert failed.reason == "NothingToEmbed"
    assert "'nullText': 100" in failed.message
    # the running Job is stopped; the two it just took in go too (a failed plan looks no more)
    assert [e for e in decision.effects if isinstance(e, DeleteJobs)] == [
        DeleteJobs(("backfill-2",)),
        DeleteJobs(("backfill-0", "backfill-1")),
    ]
    assert launched(decision) == []
    broken = (job(0, JobState.FAILED, failed_result()), job(1, JobState.FAILED, failed_result()))
    assert condition(step(generating_status(), jobs=broken), "Failed").reason == "BatchesFailing"


def test_more_failed_batches_than_allowed_stop_the_plan_and_its_running_jobs() -> None:
    spec = plan_spec(batching={"maxFailedBatches": 0})
    jobs = (job(0), job(1, JobState.FAILED, failed_result()), job(2, JobState.RUNNING))
    decision = step(generating_status(), spec, jobs=jobs)
    assert condition(decision, "Failed").reason == "TooManyFailedBatches"
    assert DeleteJobs(("backfill-2",)) in decision.effects


def test_slow_batches_are_reported_but_never_fail_a_batch() -> None:
    slow = result()
    slow.timings.batch_p95_ms = 900.0
    decision = step(generating_status(), jobs=(job(0, outcome=slow),))
    assert decision.status.completed_ranges == "0"
    degraded = condition(decision, "QualityDegraded")
    assert (degraded.status.value, degraded.reason) == ("True", "CriticalThresholdCrossed")
    assert "above the critical level 250.0 ms" in degraded.message


def test_jobs_run_the_pinned_spec_not_the_edited_collection() -> None:
    from vector_operator.migration.observation import PinnedSpec

    model = TARGET.spec.embedding.model_copy(update={"model": "sentence-transformers/other-model"})
    edited = dataclasses.replace(
        TARGET, spec=TARGET.spec.model_copy(update={"embedding": model}), generation=2
    )
    decision = step(generating_status(), pinned=PinnedSpec(1, TARGET.spec), target=edited)
    launches = [e for e in decision.effects if isinstance(e, LaunchJob)]
    assert len(launches) == 2
    for launch in launches:
        env = {
            e["name"]: e.get("value")
            for e in launch.manifest["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert json.loads(env["VO_ASSIGNMENT"])["model"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"


# -- validating and cutover -----------------------------------------------------------------------


def test_nothing_embedded_never_swings_the_alias() -> None:
    validating = generating_status(
        phase="Validating",
        completedRanges="0-3",
        progress={"recordsDone": 0, "recordsRead": 200, "recordsSkipped": 200},
    )
    decision = step(validating, milvus=milvus_view(V1, entities=0))
    assert decision.status.phase is MigrationPhase.FAILED
    assert condition(decision, "Failed").reason == "NothingToMigrate"
    assert f"the alias keeps serving {V1}" in condition(decision, "Failed").message
    assert not any(isinstance(e, SwingAlias) for e in decision.effects)


def test_validation_clears_the_batch_jobs_and_a_lost_collection_ends_the_plan() -> None:
    validating = generating_status(phase="Validating", completedRanges="0-3", progress={"recordsDone": 200})
    jobs = (job(2), job(3))  # taken in on the last Generating step, deleted only now
    decision = step(validating, jobs=jobs, milvus=milvus_view(V1, entities=200, recall_at_k=1.0))
    assert DeleteJobs(("backfill-2", "backfill-3")) in decision.effects
    assert decision.status.phase is MigrationPhase.CUTTING_OVER
    lost = step(validating, milvus=milvus_view(V1))  # the observer found no new collection to probe
    assert condition(lost, "Failed").reason == "CollectionLost"


def test_cutover_is_a_compare_and_swap_and_updates_the_collection_status_at_once() -> None:
    cutting = generating_status(phase="CuttingOver", progress={"recordsDone": 200})
    decision = step(cutting, milvus=milvus_view(V1))
    assert decision.effects == [SwingAlias(ALIAS, to=V2, expected=V1), UpdateTarget(V2, V1)]
    assert decision.status.phase is MigrationPhase.SUCCEEDED
    moved = step(cutting, milvus=milvus_view(f"{ALIAS}__v3", V1, V2, f"{ALIAS}__v3"))
    assert moved.status.phase is MigrationPhase.FAILED
    assert condition(moved, "Failed").reason == "AliasMoved"
    assert moved.effects == []
    resumed = step(cutting, milvus=milvus_view(V2))  # swung before a restart: not swung twice
    assert resumed.effects == [UpdateTarget(V2, V1)]


# -- finished plans ------------------------------------------------------------------------------


def test_a_finished_plan_is_quiet() -> None:
    done = generating_status(
        phase="Succeeded", completedAt=NOW.isoformat(), previousRetiredAt=NOW.isoformat(),
        postCutover={"windowEndsAt": (NOW - datetime.timedelta(minutes=1)).isoformat()},
    )  # fmt: skip
    spec = plan_spec()
    assert not step_due(spec, done, NOW + datetime.timedelta(hours=1), 60)
    assert not needs_timer(spec, done, NOW + datetime.timedelta(hours=1))
    decision = step(done, spec, batch_plan=None, pinned=None, target=None)
    assert decision.effects == []
    assert decision.events == []
    assert decision.status.model_dump() == done.model_copy(update={"observed_generation": 1}).model_dump()


@pytest.mark.parametrize("phase", ["Failed", "RolledBack"])
def test_failed_and_rolled_back_plans_need_no_timer(phase: str) -> None:
    ended = status(phase=phase, completedAt=NOW.isoformat())
    assert not needs_timer(plan_spec(), ended, NOW)
    assert not step_due(plan_spec(), ended, NOW, 60)
    assert step_due(plan_spec(retry=1), ended, NOW, 60) is (phase == "Failed")


def test_the_collection_served_before_waits_for_retention_and_every_policy_window() -> None:
    from vector_operator.migration.effects import DropPhysical

    done = generating_status(
        phase="Succeeded", completedAt=NOW.isoformat(),
        postCutover={"windowEndsAt": (NOW + datetime.timedelta(hours=30)).isoformat()},
    )  # fmt: skip
    spec = plan_spec(previousCollectionRetention="24h")
    day_later = NOW + datetime.timedelta(hours=25)
    assert step_due(spec, done, day_later, 3600)  # the window's probes are still due
    kept = step(done, spec, now=day_later, milvus=milvus_view(V2))
    assert not any(isinstance(e, DropPhysical) for e in kept.effects)
    later = NOW + datetime.timedelta(hours=31)
    retired = step(done, spec, now=later, milvus=milvus_view(V2))
    assert DropPhysical(ALIAS, V1, OWNER) in retired.effects
    assert retired.status.previous_retired_at is not None
    assert not needs_timer(spec, retired.status, later)


def test_auto_sizing_is_recorded_with_its_basis_and_the_planned_event_says_it() -> None:
    spec = plan_spec(batching={"recordsPerJob": "auto", "maxConcurrentJobs": "auto"})
    decision = step(status(), spec, batch_plan=BatchPlan(200, 200, ()), scanned=True, schedulable_cpus=2.0)
    sizing = decision.status.sizing
    assert sizing is not None
    assert (sizing.records_per_job, sizing.max_concurrent_jobs) == (200, 2)
    assert sizing.basis is not None
    assert "estimated, nothing measured yet" in sizing.basis
    (planned,) = [e for e in decision.events if e.reason == "Planned"]
    assert "at most 2 Jobs at a time" in planned.message
    assert "2 CPUs on the nodes" in planned.message
    # measured by an earlier plan on the same collection: the basis says so
    earlier = SiblingPlan(
        "last-week",
        NOW - datetime.timedelta(days=7),
        MigrationPhase.SUCCEEDED,
        throughput=Throughput(job_records_per_second=90.0, job_startup_seconds=7.0),
    )
    measured = step(status(), spec, batch_plan=BatchPlan(200, 200, ()), scanned=True, siblings=(earlier,))
    assert measured.status.sizing is not None
    assert measured.status.sizing.basis is not None
    assert "90 records/s per Job and 7 s start-up (measured by earlier Jobs)" in measured.status.sizing.basis
    assert measured.status.sizing.max_concurrent_jobs == 4  # no node could be read


def test_jobs_start_at_the_batch_size_earlier_jobs_settled_on_and_their_pace_is_kept() -> None:
    settled = WorkerResult.model_validate(
        {
            **result().model_dump(by_alias=True),
            "recordsPerSecond": 120.0,
            "timings": {"startupMs": 8000, "batchP95Ms": 80.0},
            "batchSizes": {"count": 5, "first": 32, "last": 7, "median": 96},
        }
    )
    decision = step(generating_status(), jobs=(job(0, outcome=settled),))
    throughput = decision.status.throughput
    assert throughput is not None
    assert (throughput.encode_batch_size, throughput.job_records_per_second) == (96, 120.0)
    assert throughput.job_startup_seconds == 8.0
    launches = [e for e in decision.effects if isinstance(e, LaunchJob)]
    assert launches, "the next batches start"
    for launch in launches:
        container = launch.manifest["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert json.loads(env["VO_ASSIGNMENT"]["value"])["startBatchSize"] == 96
        assert container["resources"] == {"requests": {"cpu": "1"}}
        assert env["VO_CPU_REQUEST_MILLICORES"]["valueFrom"]["resourceFieldRef"] == {
            "containerName": "worker", "resource": "requests.cpu", "divisor": "1m"
        }  # fmt: skip
    second = WorkerResult.model_validate(
        {**settled.model_dump(by_alias=True), "recordsPerSecond": 80.0, "timings": {"startupMs": 6000}}
    )
    smoothed = step(decision.status, jobs=(job(0, outcome=settled), job(1, outcome=second)))
    assert smoothed.status.throughput is not None
    assert smoothed.status.throughput.job_records_per_second == 100.0
    assert smoothed.status.throughput.job_startup_seconds == 7.0
