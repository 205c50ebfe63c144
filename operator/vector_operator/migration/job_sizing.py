"""``recordsPerJob: auto`` and ``maxConcurrentJobs: auto``: Jobs sized from the source's size and the
pace Jobs run at, and as many at once as the nodes hold. Pure.

- **Concurrency**: the CPUs of the nodes a worker pod may run on, divided by the CPU one pod
  requests (at most AUTO_CONCURRENCY_CAP: more Jobs at once mostly queue on Milvus's writes).
- **Records per Job**: one wave of Jobs when the source is small enough that each Job stays under
  TARGET_JOB_SECONDS of work; more, in whole waves, when it is not (so that a retry redoes little and
  the last wave is short). A Job always has at least as much work as its own start-up, since a Job
  with less costs more than it saves; and start-up stays under a tenth of each Job
  (STARTUP_SHARE).
- **Pace**: the records per second one Job writes and its start-up (the interpreter, imports, the
  model), as the plan's earlier Jobs or the latest plan on the same collection measured them; a
  cautious CPU estimate otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vector_operator.api.migrationplan import AUTO, Batching, MigrationPlanStatus, Throughput
from vector_operator.api.model import parse_quantity
from vector_operator.migration.batch_jobs import DEFAULT_RESOURCES
from vector_operator.migration.batch_plan import MAX_BATCHES
from vector_operator.migration.observation import SiblingPlan

TARGET_JOB_SECONDS = 300.0
STARTUP_SHARE = 0.1
"""Start-up is at most this share of a Job."""
AUTO_CONCURRENCY_CAP = 32
CONCURRENCY_UNKNOWN = 4
"""Jobs at once when no node could be read (the operator may not list nodes)."""
ESTIMATED_RECORDS_PER_SECOND_PER_CPU = 50.0
"""A sentence-transformers model of MiniLM's size on one CPU core; measured figures replace it."""
ESTIMATED_STARTUP_S = 10.0


@dataclass(frozen=True)
class JobPace:
    records_per_second: float
    """Records one Job writes per second once its model is loaded."""
    startup_s: float
    measured: bool


def pod_cpus(batching: Batching) -> float:
    """The CPUs one worker pod requests (the default resources when the plan sets none)."""
    template = batching.pod_template
    resources = template.resources if template is not None and template.resources is not None else None
    if resources is None:
        return float(parse_quantity(DEFAULT_RESOURCES["requests"]["cpu"]))
    requested = (resources.requests or {}).get("cpu") or (resources.limits or {}).get("cpu")
    return float(parse_quantity(requested)) if requested is not None else 1.0


def pace(batching: Batching, measured: Throughput | None) -> JobPace:
    if measured is not None and measured.job_records_per_second and measured.job_startup_seconds is not None:
        return JobPace(measured.job_records_per_second, measured.job_startup_seconds, measured=True)
    return JobPace(
        ESTIMATED_RECORDS_PER_SECOND_PER_CPU * max(1.0, pod_cpus(batching)),
        ESTIMATED_STARTUP_S,
        measured=False,
    )


def concurrency(batching: Batching, schedulable_cpus: float | None) -> int:
    """Jobs at once: the plan's number, or (auto) what the nodes hold by the pods' CPU requests."""
    if batching.max_concurrent_jobs != AUTO:
        return int(batching.max_concurrent_jobs)
    if schedulable_cpus is None:
        return CONCURRENCY_UNKNOWN
    held = math.floor(schedulable_cpus / max(pod_cpus(batching), 0.001))
    return max(1, min(AUTO_CONCURRENCY_CAP, held))


def records_per_job(batching: Batching, records: int, jobs_at_once: int, job_pace: JobPace) -> int:
    """The plan's number, or (auto) the size that fits the rules above."""
    if batching.records_per_job != AUTO:
        return int(batching.records_per_job)
    if records <= 0:
        return 1
    rate, startup = job_pace.records_per_second, job_pace.startup_s
    longest = rate * max(TARGET_JOB_SECONDS, startup / STARTUP_SHARE)
    smallest = max(1.0, rate * startup)
    jobs = math.ceil(math.ceil(records / longest) / jobs_at_once) * jobs_at_once  # whole waves
    jobs = max(1, min(jobs, math.floor(records / smallest)))
    return max(math.ceil(records / jobs), math.ceil(records / MAX_BATCHES))


def concurrency_of(batching: Batching, status: MigrationPlanStatus) -> int:
    """Jobs at once while the plan runs: the plan's number, or what planning chose for auto."""
    if batching.max_concurrent_jobs != AUTO:
        return int(batching.max_concurrent_jobs)
    chosen = status.sizing.max_concurrent_jobs if status.sizing is not None else None
    return chosen or CONCURRENCY_UNKNOWN


def measured_pace(own: Throughput | None, siblings: tuple[SiblingPlan, ...]) -> Throughput | None:
    """The pace to size Jobs by: the plan's own Jobs' (a retry round), else the latest other plan's
    of the same collection that measured one."""
    if own is not None and own.job_records_per_second and own.job_startup_seconds is not None:
        return own
    measured = [
        sibling
        for sibling in siblings
        if sibling.throughput is not None
        and sibling.throughput.job_records_per_second
        and sibling.throughput.job_startup_seconds is not None
    ]
    latest = max(measured, key=lambda sibling: sibling.created, default=None)
    return latest.throughput if latest is not None else None


def sizing_basis(batching: Batching, job_pace: JobPace, schedulable_cpus: float | None) -> str:
    """Why the Jobs have the size and concurrency they have, in one line for status and the Event."""
    parts = []
    if batching.records_per_job == AUTO:
        source = "measured by earlier Jobs" if job_pace.measured else "estimated, nothing measured yet"
        parts.append(
            f"recordsPerJob auto: {job_pace.records_per_second:.0f} records/s per Job and"
            f" {job_pace.startup_s:.0f} s start-up ({source})"
        )
    if batching.max_concurrent_jobs == AUTO:
        cpus = (
            "no node could be read" if schedulable_cpus is None else f"{schedulable_cpus:g} CPUs on the nodes"
        )
        parts.append(f"maxConcurrentJobs auto: {cpus}, {pod_cpus(batching):g} CPU per pod")
    return "; ".join(parts) or "set in spec.batching"
