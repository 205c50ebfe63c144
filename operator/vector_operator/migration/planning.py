"""Pending and Planning: refuse what the installation does not allow, take the batches the source
scan (or, for files and backups, the inventory Job) found (a source with nothing to migrate ends
here, and the alias stays), wait for approval and for the target to be free."""

from __future__ import annotations

from vector_operator.api.migrationplan import Approval, JobSizing, MigrationPhase
from vector_operator.contract.sync import slot_name
from vector_operator.migration import admission, job_sizing, sync_worker, target_lock
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.effects import CreateChangeSlot, StoreBatchPlan
from vector_operator.migration.plan_tasks import take_inventory
from vector_operator.migration.progress import count_null_keys, progress_of, summary
from vector_operator.migration.step import Step


def _record_sizing(step: Step, plan: BatchPlan) -> None:
    """What the Jobs' size and concurrency are, and why: the same inputs the scan sized them by."""
    batching = step.spec.batching
    pace = job_sizing.pace(batching, job_sizing.measured_pace(step.status.throughput, step.obs.siblings))
    step.status.sizing = JobSizing(
        records_per_job=plan.records_per_batch,
        max_concurrent_jobs=job_sizing.concurrency(batching, step.obs.schedulable_cpus),
        basis=job_sizing.sizing_basis(batching, pace, step.obs.schedulable_cpus),
    )


def _take_batches(step: Step, plan: BatchPlan) -> bool:
    """Records the batches the scan found; False when the source has nothing to migrate (the plan
    ends, nothing was created)."""
    count_null_keys(step.status, plan.null_keys)
    if plan.records_total == 0:
        why = "the source has no rows" if not plan.null_keys else f"all {plan.null_keys} rows have a NULL key"
        step.fail(
            "SourceEmpty" if not plan.null_keys else "NothingToMigrate",
            f"{why}: nothing to migrate, the alias keeps serving what it served; fill the source and create"
            " the plan again",
        )
        return False
    if step.obs.scanned or step.status.sizing is None:
        _record_sizing(step, plan)
    if step.obs.scanned:
        assert step.status.sizing is not None
        if sync_worker.needs_slot(step.spec):  # before any batch reads a row: every change is in it
            step.effect(CreateChangeSlot(slot_name(step.obs.plan.uid)))
        step.effect(StoreBatchPlan(plan))
        step.event(
            "Planned",
            f"{plan.records_total} records in {plan.batches} batches of up to {plan.records_per_batch};"
            f" at most {step.status.sizing.max_concurrent_jobs} Jobs at a time ({step.status.sizing.basis})",
        )
    progress = progress_of(step.status)
    progress.batches_total, progress.records_total = plan.batches, plan.records_total + plan.null_keys
    progress.summary = summary(progress.batches_succeeded or 0, plan.batches)
    return True


def planning(step: Step) -> None:
    if step.phase is MigrationPhase.PENDING:
        step.status.phase = MigrationPhase.PLANNING
        step.event("Planning", "counting the source rows and splitting them into batches")
    if (refused := admission.refusal(step.spec, step.obs.installation)) is not None:
        step.blocked(refused)
        return
    plan = step.obs.batch_plan
    if plan is None:  # files or a backup: a Job counts them (the operator cannot read them)
        take_inventory(step)
        return
    if not _take_batches(step, plan):
        return
    manual = step.spec.approval is Approval.MANUAL
    if manual and not step.spec.approved:
        message = (
            f"{plan.batches} batches, {plan.records_total} records planned: approve with `kubectl vector"
            " approve` (sets spec.approved: true) to start"
        )
        step.condition("Approved", False, "AwaitingApproval", message)
        step.progressing("AwaitingApproval", "waiting for approval")
        return
    step.condition("Approved", True, "Approved" if manual else "AutomaticApproval", "approved")
    if (busy := target_lock.busy(step.obs)) is not None:
        step.blocked(busy)
        return
    step.progressing("Preparing", "recording what to roll back to and preparing the target collection")
    step.move_to(MigrationPhase.PREPARING)
