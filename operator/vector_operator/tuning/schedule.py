"""When a study runs: once per change of the tuning or index spec, again after the schedule's
period, and resumed when the operator stopped in the middle of one."""

from __future__ import annotations

import datetime
import hashlib
from enum import StrEnum

from vector_operator.api.collection_tuning import TuningSpec, TuningState, TuningStatus
from vector_operator.collection.milvus_layout import CollectionLayout
from vector_operator.collection.tuned_layout import serving_fingerprint
from vector_operator.rollback.triggers import parse_duration

MACROS = {
    "@hourly": datetime.timedelta(hours=1),
    "@daily": datetime.timedelta(days=1),
    "@weekly": datetime.timedelta(weeks=1),
    "@monthly": datetime.timedelta(days=30),
}


class Due(StrEnum):
    START = "Start"
    RESUME = "Resume"


def study_fingerprint(spec: TuningSpec, spec_layout: CollectionLayout) -> str:
    """The tuning spec and the spec's own index and search parameters, in 16 hex digits."""
    canonical = spec.model_dump_json(by_alias=True) + serving_fingerprint(spec_layout)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def period(schedule: str | None) -> datetime.timedelta | None:
    if schedule is None:
        return None
    if schedule in MACROS:
        return MACROS[schedule]
    every = parse_duration(schedule)  # the CRD admits whole minutes and hours only
    return every if every else None


def next_run(spec: TuningSpec, finished_at: datetime.datetime) -> datetime.datetime | None:
    every = period(spec.schedule)
    return finished_at + every if every is not None else None


def due(
    spec: TuningSpec, status: TuningStatus | None, fingerprint: str, now: datetime.datetime
) -> Due | None:
    """Whether a study starts (or resumes) now."""
    if status is None or status.fingerprint != fingerprint:
        return Due.START
    if status.state is TuningState.RUNNING:
        return Due.RESUME
    at = status.next_run_at if status.next_run_at is not None else None
    if at is None and status.finished_at is not None:
        at = next_run(spec, status.finished_at)
    return Due.START if at is not None and now >= at else None
