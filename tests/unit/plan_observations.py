"""Observations of a MigrationPlan for the decision tests: a plan, its target, its Jobs and their
results, as the controller's observer would gather them, built from a few keywords."""

from __future__ import annotations

import datetime
from typing import Any

from vector_operator.api.conditions import Condition, ConditionStatus
from vector_operator.api.migrationplan import MigrationPlanSpec, MigrationPlanStatus
from vector_operator.api.rollbackpolicy import RollbackPolicySpec
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.ownership import Owner
from vector_operator.contract.result import WorkerResult
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.decide import decide
from vector_operator.migration.effects import Decision
from vector_operator.migration.observation import (
    BatchJob,
    GuardingPolicy,
    Installation,
    JobState,
    MilvusView,
    PinnedSpec,
    PlanIdentity,
    PlanObservation,
    Target,
)

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
IMAGE = "registry.example/vector-operator:1"
INSTALLATION = Installation(
    worker_image=IMAGE,
    worker_command=("vector-operator", "worker"),
    allowed_images=frozenset({IMAGE}),
    allowed_service_accounts=frozenset({"embedder"}),
    default_milvus_uri="http://milvus:19530",
)
ALIAS = "articles"
TARGET_SPEC = VectorCollectionSpec.model_validate(
    {
        "collectionName": ALIAS,
        "dimension": 384,
        "index": {"type": "HNSW", "params": {"M": 16, "efConstruction": 100}},
        "searchParams": {"ef": 64},
        "embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2"},
    }
)
OWNER = Owner("search", "articles", "target-uid")
BATCHES = BatchPlan(records_total=200, records_per_batch=50, starts=(51, 101, 151))


def plan_spec(**changes: Any) -> MigrationPlanSpec:
    document: dict[str, Any] = {
        "targetRef": {"name": "articles"},
        "source": {
            "sql": {
                "urlSecretRef": {"name": "db", "key": "url"},
                "table": "articles",
                "primaryKey": "id",
                "textColumns": ["title", "body"],
            }
        },
        "batching": {"recordsPerJob": 50, "maxConcurrentJobs": 2},
        # No catch-up before the cutover here: the sync's own decisions are in test_sync_decisions.
        "sync": {"catchUp": False},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return MigrationPlanSpec.model_validate(document)


def ready(type_: str = "Ready", reason: str = "Serving", holds: bool = True) -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus.TRUE if holds else ConditionStatus.FALSE,
        reason=reason,
        last_transition_time=NOW,
    )


TARGET = Target(
    namespace="search",
    name="articles",
    uid="target-uid",
    generation=1,
    spec=TARGET_SPEC,
    conditions=(ready(), ready("UpToDate", "SpecApplied")),
)


def status(**fields: Any) -> MigrationPlanStatus:
    return MigrationPlanStatus.model_validate(fields)


def generating_status(**fields: Any) -> MigrationPlanStatus:
    base: dict[str, Any] = {
        "phase": "Generating",
        "previousPhysicalCollection": f"{ALIAS}__v1",
        "newPhysicalCollection": f"{ALIAS}__v2",
        "startedAt": (NOW - datetime.timedelta(minutes=1)).isoformat(),
    }
    return status(**{**base, **fields})


def milvus_view(alias_target: str | None = f"{ALIAS}__v1", *physicals: str, **probe: Any) -> MilvusView:
    from vector_operator.migration.observation import Probe

    names = physicals or (f"{ALIAS}__v1", f"{ALIAS}__v2")
    return MilvusView(alias_target, dict.fromkeys(names, OWNER), Probe(**probe) if probe else None)


def observation(
    plan_status: MigrationPlanStatus, spec: MigrationPlanSpec | None = None, **fields: Any
) -> PlanObservation:
    defaults: dict[str, Any] = {
        "batch_plan": BATCHES,
        "pinned": PinnedSpec(1, TARGET_SPEC),
        "target": TARGET,
    }
    return PlanObservation(
        plan=PlanIdentity("search", "backfill", "plan-uid", 1, NOW - datetime.timedelta(hours=1)),
        spec=spec or plan_spec(),
        status=plan_status,
        now=fields.pop("now", NOW),
        installation=fields.pop("installation", INSTALLATION),
        **{**defaults, **fields},
    )


def step(plan_status: MigrationPlanStatus, spec: MigrationPlanSpec | None = None, **fields: Any) -> Decision:
    return decide(observation(plan_status, spec, **fields))


def result(
    read: int = 50,
    upserted: int | None = None,
    skipped: dict[str, int] | None = None,
    coherence: float = 0.99,
) -> WorkerResult:
    skipped = skipped or {}
    written = read - sum(skipped.values()) if upserted is None else upserted
    return WorkerResult.model_validate(
        {
            "status": "Succeeded",
            "reason": "Completed",
            "records": {"read": read, "embedded": written, "upserted": written, "skipped": skipped},
            "timings": {"batchP95Ms": 80.0},
            "quality": {"sampled": 10, "coherence": {"min": coherence, "mean": coherence, "max": coherence}},
        }
    )


def failed_result(message: str = "the source database failed: integer overflow") -> WorkerResult:
    return WorkerResult.model_validate(
        {"status": "Failed", "reason": "SourceUnavailable", "message": message, "records": {"read": 0}}
    )


def job(
    index: int, state: JobState = JobState.COMPLETE, outcome: WorkerResult | None = None, round_: int = 0
) -> BatchJob:
    name = f"backfill-{index}" if round_ == 0 else f"backfill-{index}-r{round_}"
    if outcome is None and state is JobState.COMPLETE:
        outcome = result()
    return BatchJob(name=name, index=index, round=round_, state=state, result=outcome)


def policy(name: str, triggers: list[dict[str, Any]], actions: list[str], **spec: Any) -> GuardingPolicy:
    document = {"planNames": ["backfill"], "triggers": triggers, "actions": actions, **spec}
    return GuardingPolicy(name, RollbackPolicySpec.model_validate(document))


def reasons(decision: Decision) -> list[str]:
    return [event.reason for event in decision.events]


def condition(decision: Decision, type_: str) -> Condition:
    found = next((c for c in decision.status.conditions or [] if c.type == type_), None)
    assert found is not None, f"no {type_} condition in {decision.status.conditions}"
    return found
