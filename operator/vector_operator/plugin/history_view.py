"""`kubectl vector history`: cutovers, re-indexes and rollbacks, newest first, from what the
plans, the VectorCollections (their latest re-index) and the RollbackPolicies recorded (a plan
keeps its latest rollback; a policy its last 20 executions). Pure."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from vector_operator.api.collection_reindex import ReindexState
from vector_operator.api.migrationplan import MigrationPlanStatus
from vector_operator.api.rollbackpolicy import RollbackPolicyStatus
from vector_operator.api.vectorcollection import VectorCollectionStatus
from vector_operator.plugin.typed_objects import parsed


@dataclass(frozen=True)
class Entry:
    time: datetime.datetime
    namespace: str
    plan: str  # the MigrationPlan, or "<collection> (re-index)"
    what: str  # CutOver, Reindex, Rollback
    detail: str


def _steps(steps: list[Any]) -> str:
    return ", ".join(f"{s.action.value} {s.result.value}" for s in steps) or "no step yet"


def _reindexed(name: str) -> str:
    return f"{name} (re-index)"


def entries(
    plans: list[dict[str, Any]],
    policies: list[dict[str, Any]],
    only: str | None,
    collections: list[dict[str, Any]] | None = None,
) -> list[Entry]:
    """``only``: one MigrationPlan's, or one VectorCollection's re-index, by name."""
    found: dict[tuple[str, str, str, datetime.datetime], Entry] = {}
    for item in collections or []:
        namespace, name = item["metadata"]["namespace"], item["metadata"]["name"]
        reindex = parsed(VectorCollectionStatus, item, "status").reindex
        if (only is not None and name != only) or reindex is None or reindex.finished_at is None:
            continue
        if reindex.state in (ReindexState.SUCCEEDED, ReindexState.ROLLED_BACK):
            rate = f", {reindex.vectors_per_second:.0f} vectors/s" if reindex.vectors_per_second else ""
            detail = f"alias moved {reindex.source} -> {reindex.target} ({reindex.index}{rate})"
            found[(namespace, name, "Reindex", reindex.finished_at)] = Entry(
                reindex.finished_at, namespace, _reindexed(name), "Reindex", detail
            )
    for item in plans:
        namespace, name = item["metadata"]["namespace"], item["metadata"]["name"]
        if only is not None and name != only:
            continue
        status = parsed(MigrationPlanStatus, item, "status")
        if status.cut_over_at is not None:
            detail = f"alias moved {status.previous_physical_collection} -> {status.new_physical_collection}"
            found[(namespace, name, "CutOver", status.cut_over_at)] = Entry(
                status.cut_over_at, namespace, name, "CutOver", detail
            )
        if (record := status.rollback) is not None:
            by = "by hand" if record.policy == "manual" else f"RollbackPolicy {record.policy}"
            detail = f"{by}: {record.trigger} in {record.phase}; {_steps(record.steps)}"
            found[(namespace, name, "Rollback", record.executed_at)] = Entry(
                record.executed_at, namespace, name, "Rollback", detail
            )
    for item in policies:
        namespace, policy = item["metadata"]["namespace"], item["metadata"]["name"]
        for execution in parsed(RollbackPolicyStatus, item, "status").executions or []:
            if only is not None and only not in (execution.plan, execution.collection):
                continue
            subject = execution.plan or _reindexed(execution.collection or "?")
            observed = f"observed {execution.observed_value:.4g}"
            steps = _steps(execution.steps)
            when = f"in {execution.phase.value}"
            detail = f"RollbackPolicy {policy}: {execution.trigger} ({observed}) {when}; {steps}"
            key = (namespace, subject, "Rollback", execution.executed_at)
            found[key] = Entry(execution.executed_at, namespace, subject, "Rollback", detail)
    return sorted(found.values(), key=lambda entry: entry.time, reverse=True)
