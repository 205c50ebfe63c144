"""Generating (and Paused): take in finished Jobs, report progress and quality, let the policies
judge, stop early when the first batches show nothing can work, and launch the next batches."""

from __future__ import annotations

from pydantic import ValidationError

from vector_operator.api.migrationplan import MigrationPhase
from vector_operator.migration import admission, compact_ranges, job_sizing
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.batch_results import BatchesSeen, take_in_finished_jobs
from vector_operator.migration.effects import DeleteJobs, LaunchJob
from vector_operator.migration.job_launch import batch_manifest
from vector_operator.migration.observation import JobState, Problem
from vector_operator.migration.progress import progress_of, summary
from vector_operator.migration.quality_levels import report_quality
from vector_operator.migration.step import Step
from vector_operator.migration.time_left import throughput_and_time_left
from vector_operator.rollback.guard import guard

EARLY_STOP_AFTER = 2
"""When the first this-many finished batches wrote nothing, the plan stops: the rest would too."""


def generating(step: Step) -> None:
    plan = step.obs.batch_plan
    if plan is None:
        step.blocked(Problem("BatchPlanMissing", f"the ConfigMap of {step.obs.plan.name}'s batches is gone"))
        return
    seen = take_in_finished_jobs(step)
    left = _progress(step, plan, seen)
    report_quality(step)
    if guard(step, MigrationPhase.GENERATING.value):
        return
    if not step.paused and _stopped(step, plan, seen):  # paused: a human decides, nothing ends on its own
        return
    if _generated(step, plan, seen):
        return
    if step.paused:
        _pause(step, seen)
        return
    if (refused := admission.refusal(step.spec, step.obs.installation)) is not None:
        step.blocked(refused)
        return
    if step.obs.status.phase is MigrationPhase.PAUSED:
        step.event("Resumed", f"resuming at {progress_of(step.status).summary}")
    step.status.phase = MigrationPhase.GENERATING
    launched = _launch(step, plan, seen)
    if seen.unschedulable:
        step.progressing("Unschedulable", seen.unschedulable, holds=False)
    elif launched is not None:
        running = len(seen.running) + launched
        step.progressing(
            "Generating", f"{progress_of(step.status).summary} batches done, {running} running{left}"
        )


def _progress(step: Step, plan: BatchPlan, seen: BatchesSeen) -> str:
    status, progress = step.status, progress_of(step.status)
    succeeded = compact_ranges.count(status.completed_ranges)
    progress.batches_total, progress.records_total = plan.batches, plan.records_total + plan.null_keys
    progress.batches_succeeded, progress.batches_running = succeeded, len(seen.running)
    progress.batches_failed = compact_ranges.count(status.failed_ranges)
    progress.percent = round(100.0 * succeeded / plan.batches, 2) if plan.batches else 100.0
    progress.summary = summary(succeeded, plan.batches)
    return throughput_and_time_left(step, plan.records_total)


def _stop(step: Step, seen: BatchesSeen, reason: str, message: str) -> None:
    running = tuple(
        job.name for job in step.obs.jobs if job.state is JobState.RUNNING and job.index in seen.running
    )
    if running:
        step.effect(DeleteJobs(running))
    step.fail(reason, f"{message}; stopped {len(running)} running Job(s)")


def _stopped(step: Step, plan: BatchPlan, seen: BatchesSeen) -> bool:
    status, progress = step.status, progress_of(step.status)
    done, failed = compact_ranges.count(status.completed_ranges), compact_ranges.count(status.failed_ranges)
    fix = "fix the cause, then raise spec.retry to run the batches again"
    if not progress.records_done and done + failed >= EARLY_STOP_AFTER and done + failed < plan.batches:
        if done == 0:
            last = status.recent_failures[-1].message if status.recent_failures else "no result"
            _stop(
                step, seen, "BatchesFailing", f"the first {failed} batches all failed (last: {last}); {fix}"
            )
        else:
            skipped = progress.skipped_by_reason or {}
            _stop(
                step,
                seen,
                "NothingToEmbed",
                f"the first {done + failed} batches read {progress.records_read or 0} records and embedded"
                f" none (skipped {skipped}): the text columns hold nothing to embed; {fix}",
            )
        return True
    limit = step.spec.batching.max_failed_batches
    if limit is not None and failed > limit:
        message = (
            f"{failed} batches failed ({status.failed_ranges}), more than batching.maxFailedBatches {limit}"
        )
        _stop(step, seen, "TooManyFailedBatches", f"{message}; {fix}")
        return True
    return False


def _generated(step: Step, plan: BatchPlan, seen: BatchesSeen) -> bool:
    status = step.status
    done, failed = compact_ranges.count(status.completed_ranges), compact_ranges.count(status.failed_ranges)
    if seen.running or done + failed < plan.batches:
        return False
    if failed:
        last = status.recent_failures[-1].message if status.recent_failures else ""
        step.fail(
            "BatchesFailed",
            f"batches {status.failed_ranges} failed for good (last: {last}); the other {done} are done: raise"
            f" spec.retry to run only those again; {status.new_physical_collection} is not served",
        )
        return True
    step.event(
        "Generated", f"all {plan.batches} batches written ({progress_of(status).records_done or 0} records)"
    )
    step.progressing(
        "Validating", f"all {plan.batches} batches written; validating {status.new_physical_collection}"
    )
    step.move_to(MigrationPhase.VALIDATING)
    return True


def _pause(step: Step, seen: BatchesSeen) -> None:
    pause = step.status.pause
    by = pause.by if pause is not None else "spec.paused"
    if step.obs.status.phase is not MigrationPhase.PAUSED:
        step.event("Paused", f"paused by {by}: no new Jobs; {len(seen.running)} running Job(s) finish")
    step.status.phase = MigrationPhase.PAUSED
    how = pause.message if pause is not None else "set spec.paused: false to resume"
    step.progressing("Paused", f"paused by {by} at {progress_of(step.status).summary}: {how}", holds=False)


def _launch(step: Step, plan: BatchPlan, seen: BatchesSeen) -> int | None:
    """Launches the next batches; their count, or None when the step is blocked instead."""
    status, spec = step.status, step.obs.collection_spec
    assert spec is not None  # the observer reports a missing target before Generating runs
    milvus_uri = spec.milvus.uri or step.obs.installation.default_milvus_uri
    if milvus_uri is None:
        step.blocked(Problem("MilvusNotConfigured", "no Milvus: set spec.milvus.uri or --milvus-uri"))
        return None
    room = job_sizing.concurrency_of(step.spec.batching, status) - len(seen.running)
    ranges = (status.completed_ranges, status.failed_ranges)
    chosen = compact_ranges.lowest_missing(ranges, plan.batches, seen.running, room)
    for index in chosen:
        try:
            manifest = batch_manifest(step.obs, status, plan, index, spec, milvus_uri)
        except ValidationError as error:
            step.blocked(Problem("InvalidAssignment", f"cannot build batch {index}'s Job: {error}"))
            return None
        step.effect(LaunchJob(index, manifest))
    return len(chosen)
