"""Kopf handlers for MigrationPlan: one step of the plan's phase machine per tick.

    Pending -> Planning -> Preparing -> Generating <-> Paused -> Validating -> CuttingOver -> Succeeded
                                                   \\-> Failed

Everything a step needs is re-read from the cluster and Milvus each time (the plan's status, its
ConfigMap of batch boundaries, its Jobs and their pods' termination messages), so a restarted
operator resumes exactly: a finished Job is folded into status once (its batch enters
`completedRanges` in the same patch) and deleted only on a later tick, after that patch landed.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf
from kubernetes.client import V1ConfigMap, V1DeleteOptions, V1Job
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from vector_operator.api.migrationplan import MigrationMode, MigrationPlanSpec
from vector_operator.api.resource import GROUP, VERSION
from vector_operator.api.rollbackpolicy import RollbackAction, RollbackPolicySpec
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import CollectionLayout, layout_of
from vector_operator.collection.physical_names import next_physical_name
from vector_operator.collection.reconciliation import PointAlias
from vector_operator.handlers.context import OperatorContext
from vector_operator.kubernetes_secrets import SecretReader, SecretUnavailable
from vector_operator.migration import compact_ranges
from vector_operator.migration.assignments import UnsupportedSource, batch_assignment
from vector_operator.migration.batch_jobs import (
    BATCH_LABEL,
    MILVUS_TOKEN_ENV,
    PLAN_LABEL,
    SOURCE_URL_ENV,
    JobSettings,
    SecretEnv,
    batch_job,
    plan_label_value,
)
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.progress import (
    failure_entry,
    fold_success,
    next_batches,
    summary,
    with_failure,
)
from vector_operator.migration.source_scan import SourceUnavailable, scan_sql_source
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusEndpoint, MilvusUnavailable
from vector_operator.milvus.endpoints import MilvusNotConfigured, endpoint_for
from vector_operator.rollback.triggers import Firing, Observation, evaluate, parse_duration, selects
from vector_operator.status_conditions import ConditionUpdate, merged_conditions, timestamp
from vector_operator.worker.result import WorkerResult

PLURAL = "migrationplans"
KIND = "MigrationPlan"
BATCH_PLAN_KEY = "batches.json.gz.b64"
MAX_BATCH_PLAN_BYTES = 1_000_000  # a ConfigMap holds 1 MiB, metadata included
UNSCHEDULABLE_AFTER_S = 30.0
TERMINAL = ("Succeeded", "Failed", "RolledBack")
Json = dict[str, Any]


class StepError(Exception):
    """The step cannot go on now; reason and message go to the Progressing condition."""

    def __init__(self, reason: str, message: str, warning: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.warning = warning  # False: an expected wait (a Normal Event), not a problem


@dataclass
class Step:
    """What one tick decided to write."""

    status: Json
    conditions: list[ConditionUpdate]

    def set_phase(self, phase: str) -> None:
        self.status["phase"] = phase


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class PlanRun:
    """One tick of one plan."""

    def __init__(
        self, context: OperatorContext, body: Mapping[str, Any], logger: logging.Logger | kopf.Logger
    ) -> None:
        self.context = context
        self.body = body
        self.logger = logger
        metadata = body["metadata"]
        self.namespace = str(metadata["namespace"])
        self.name = str(metadata["name"])
        self.uid = str(metadata["uid"])
        self.generation = metadata.get("generation")
        self.status: Json = json.loads(json.dumps(dict(body.get("status") or {})))
        self.spec = MigrationPlanSpec.model_validate(dict(body["spec"]))
        self.step = Step(status={}, conditions=[])

    # -- small helpers --------------------------------------------------------------------------

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        (kopf.warn if warning else kopf.info)(
            kopf.Body(cast(kopf.RawBody, self.body)), reason=reason, message=message
        )

    def current(self, key: str) -> Any:
        """A status field as this tick leaves it."""
        return self.step.status.get(key, self.status.get(key))

    def condition(self, type_: str, holds: bool, reason: str, message: str = "") -> None:
        self.step.conditions.append(ConditionUpdate.of(type_, holds, reason, message))

    def progressing(self, reason: str, message: str, holds: bool = True) -> None:
        self.condition("Progressing", holds, reason, message)

    def target(self) -> tuple[Json, VectorCollectionSpec]:
        try:
            found = self.context.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "vectorcollections", self.spec.target_ref.name
            )
        except ApiException as error:
            if error.status == 404:
                raise StepError(
                    "TargetNotFound",
                    f"VectorCollection {self.spec.target_ref.name} does not exist in {self.namespace}:"
                    " create it, or point targetRef at an existing one",
                ) from None
            raise
        collection = cast(Json, found)
        return collection, VectorCollectionSpec.model_validate(collection["spec"])

    def endpoint(self, collection: VectorCollectionSpec) -> MilvusEndpoint:
        try:
            return endpoint_for(
                collection.milvus,
                self.context.settings.default_milvus_uri,
                SecretReader(self.context.core, self.namespace),
            )
        except (MilvusNotConfigured, SecretUnavailable) as error:
            raise StepError(type(error).__name__, str(error)) from None

    def milvus(self, endpoint: MilvusEndpoint) -> MilvusCollections:
        return MilvusCollections(self.context.clients, endpoint, self.context.metrics.observe_milvus_call)

    # -- the batch plan, stored once in a ConfigMap owned by the plan ---------------------------

    @property
    def config_map_name(self) -> str:
        return f"{self.name[:240]}-batches"

    def stored_batch_plan(self) -> BatchPlan | None:
        try:
            found = self.context.core.read_namespaced_config_map(self.config_map_name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        data = found.binary_data or {}
        if BATCH_PLAN_KEY not in data:
            return None
        stored = data[BATCH_PLAN_KEY]
        return BatchPlan.decode(stored.decode() if isinstance(stored, bytes) else stored)

    def store_batch_plan(self, plan: BatchPlan) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.config_map_name,
                "labels": {PLAN_LABEL: plan_label_value(self.name)},
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": KIND,
                        "name": self.name,
                        "uid": self.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "binaryData": {BATCH_PLAN_KEY: plan.encode()},
        }
        try:
            self.context.core.create_namespaced_config_map(self.namespace, V1ConfigMap.model_validate(body))
        except ApiException as error:
            if error.status != 409:
                raise

    def source_url(self) -> str:
        sql = self.spec.source.sql
        if sql is None:
            raise StepError(
                "UnsupportedSource", "the controller plans SQL sources only for now: use source.sql", False
            )
        try:
            return SecretReader(self.context.core, self.namespace)(sql.url_secret_ref)
        except SecretUnavailable as error:
            raise StepError("SecretUnavailable", str(error)) from None

    # -- phases ---------------------------------------------------------------------------------

    def run(self) -> None:
        phase = self.status.get("phase") or "Pending"
        record = self.status.get("rollback")
        if record is not None and not record.get("completed"):
            self.execute_rollback(dict(record))  # an earlier operator stopped in the middle
            return
        if phase in TERMINAL:
            if phase == "Succeeded":
                if self.spec.rollback and record is None:
                    self.start_rollback(
                        Firing("manual", "spec.rollback: true", "manual", 0.0, 0.0),
                        [RollbackAction.REVERT_ALIAS],
                        "PostCutover",
                    )
                    return
                if self.in_post_cutover_window():
                    self.guard("PostCutover")
                self.retire_previous()
            return
        if phase == "Pending":
            self.step.set_phase("Planning")
            self.event("Planning", "counting the source rows and splitting them into batches")
            phase = "Planning"
        handler = {
            "Planning": self.planning,
            "Preparing": self.preparing,
            "Generating": self.generating,
            "Paused": self.generating,
            "Validating": self.validating,
            "CuttingOver": self.cutting_over,
        }[phase]
        handler()
        if phase in ("Generating", "Paused", "Validating", "CuttingOver"):
            self.guard("Generating" if phase == "Paused" else phase)
        self.publish_quality()

    # -- rollback policies ----------------------------------------------------------------------

    def policies(self) -> list[tuple[str, RollbackPolicySpec]]:
        """The RollbackPolicies of this namespace that guard this plan."""
        listed = cast(
            Json,
            self.context.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "rollbackpolicies"
            ),
        )
        labels = dict(self.body["metadata"].get("labels") or {})
        chosen = []
        for item in listed.get("items", []):
            try:
                spec = RollbackPolicySpec.model_validate(item["spec"])
            except ValidationError:
                continue
            if selects(spec.selector, spec.plan_names, self.name, labels):
                chosen.append((str(item["metadata"]["name"]), spec))
        return sorted(chosen, key=lambda pair: pair[0])

    def in_post_cutover_window(self) -> bool:
        completed = _parse_time(self.status.get("completedAt"))
        if completed is None or self.spec.mode != MigrationMode.BLUE_GREEN:
            return False
        windows = [parse_duration(spec.post_cutover_window) for _, spec in self.policies()]
        return bool(windows) and _now() < completed + max(windows)

    def figures(self, phase: str) -> dict[str, float]:
        """Collection-level values the triggers read in `phase`."""
        if phase == "PostCutover":
            collection, _ = self.target()
            probe = (collection.get("status") or {}).get("quality") or {}
            return {
                k: float(v)
                for k, v in probe.items()
                if k in ("searchLatencyP95Ms", "recallAtK") and v is not None
            }
        quality = {**(self.status.get("quality") or {}), **(self.step.status.get("quality") or {})}
        values: dict[str, float] = {}
        if (quality.get("coherence") or {}).get("mean") is not None:
            values["coherence"] = float(quality["coherence"]["mean"])
        for source, metric in (
            ("failureRate", "failureRate"),
            ("processingTimeMsP95", "processingTimeMs"),
            ("recallAtK", "recallAtK"),
            ("searchLatencyP95Ms", "searchLatencyP95Ms"),
        ):
            if quality.get(source) is not None:
                values[metric] = float(quality[source])
        return values

    def guard(self, phase: str) -> None:
        """Evaluates the guarding policies; the first trigger that fires starts a rollback. A plan
        is acted on once: after a policy fired (even if it only paused the plan), a human decides."""
        if self.current("rollback") is not None:
            return
        policies = self.policies()
        if not policies:
            return
        now = _now()
        observation = Observation(
            phase=phase,
            recent_batches=self.current("recentBatches") or [],
            figures=self.figures(phase),
            now=now,
        )
        since = {k: _parse_time(v) or now for k, v in (self.current("triggerSince") or {}).items()}
        for name, spec in policies:
            firing, since = evaluate(name, spec, observation, since)
            if firing is not None:
                self.start_rollback(firing, list(spec.actions), phase)
                break
        self.step.status["triggerSince"] = {k: timestamp(v) for k, v in since.items()} or None

    def start_rollback(self, firing: Firing, actions: list[RollbackAction], phase: str) -> None:
        record: Json = {
            "policy": firing.policy,
            "trigger": firing.trigger,
            "phase": phase,
            "actions": [a.value for a in actions],
            "steps": [],
            "executedAt": timestamp(_now()),
            "completed": False,
        }
        if firing.policy != "manual":
            record.update(
                metric=firing.metric, threshold=firing.threshold, observedValue=round(firing.observed, 6)
            )
            message = (
                f"RollbackPolicy {firing.policy}: {firing.trigger} (observed {firing.observed:.4g})"
                f" in {phase}; running {', '.join(record['actions'])}"
            )
        else:
            message = "rollback requested (spec.rollback: true): pointing the alias back"
        self.event("RollbackStarted", message, warning=True)
        self.context.metrics.rollbacks.labels(self.namespace, firing.policy, firing.metric).inc()
        self.execute_rollback(record)

    def execute_rollback(self, record: Json) -> None:
        """Runs the actions not yet done, recording each result as it goes (a restart finishes the
        rest, never repeats what is done)."""
        steps: list[Json] = list(record.get("steps") or [])
        self.step.status["rollback"] = {**record, "steps": steps}
        for action in record["actions"][len(steps) :]:
            result, message = self.run_action(RollbackAction(action))
            steps.append({"action": action, "result": result, "message": message[:1024]})
            self.step.status["rollback"] = {**record, "steps": steps}
        record = {**record, "steps": steps, "completed": True}
        self.step.status["rollback"] = record
        summary_text = "; ".join(f"{s['action']}: {s['result']} ({s['message']})" for s in steps)
        rolled_back = (
            any(s["action"] != "Pause" and s["result"] == "Succeeded" for s in steps)
            or "Abort" in record["actions"]
        )
        if rolled_back:
            self.step.set_phase("RolledBack")
            self.step.status["completedAt"] = timestamp(_now())
            why = (
                record["trigger"]
                if record["policy"] == "manual"
                else f"RollbackPolicy {record['policy']} fired on {record['trigger']}"
            )
            observed = (
                f" (observed {record['observedValue']:.4g})"
                if record.get("observedValue") is not None
                else ""
            )
            message = f"{why}{observed} in {record['phase']}: {summary_text}"
            self.condition(
                "RolledBack",
                True,
                "PolicyFired" if record["policy"] != "manual" else "RollbackRequested",
                message,
            )
            self.progressing("RolledBack", message, holds=False)
            self.event("RolledBack", message, warning=True)
        else:
            self.event(
                "RollbackPaused", f"paused by RollbackPolicy {record['policy']}: {summary_text}", warning=True
            )
        if record["policy"] != "manual":
            self.record_execution(record)

    def run_action(self, action: RollbackAction) -> tuple[str, str]:
        previous = self.current("previousPhysicalCollection")
        new = self.current("newPhysicalCollection")
        if action == RollbackAction.PAUSE:
            self.context.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                self.name,
                {"spec": {"paused": True}},
                _content_type=MERGE_PATCH,
            )
            return "Succeeded", "spec.paused set: no new Jobs"
        if action == RollbackAction.ABORT:
            jobs, _ = self.jobs_and_pods()
            running = [j["metadata"]["name"] for j in jobs if job_outcome(j) is None]
            self.cleanup_jobs(running)
            return "Succeeded", f"stopped {len(running)} running Job(s); the plan launches no more"
        _, collection_spec = self.target()
        milvus = self.milvus(self.endpoint(collection_spec))
        alias = collection_spec.collection_name
        if action == RollbackAction.REVERT_ALIAS:
            if not previous or previous == new:
                return "Skipped", "no previous collection to return to (InPlace, or the first fill)"
            if milvus.alias_target(alias) != new:
                return "Skipped", f"alias {alias} does not serve {new}: nothing to revert"
            if previous not in milvus.names():
                return "Failed", f"{previous} is gone (retention passed?): the alias stays on {new}"
            milvus.apply(PointAlias(previous, exists=True), alias, layout_of(collection_spec))
            self.context.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self.namespace,
                "vectorcollections",
                self.spec.target_ref.name,
                {"status": {"physicalCollection": previous, "previousPhysicalCollection": new}},
                _content_type=MERGE_PATCH,
            )
            return "Succeeded", f"alias {alias} serves {previous} again"
        if action == RollbackAction.DROP_PARTIAL_COLLECTION:
            if not new or new == previous:
                return "Skipped", "this plan fills no collection of its own"
            if milvus.alias_target(alias) == new:
                return "Failed", f"{new} still serves {alias}: not dropped (put RevertAlias before it)"
            dropped = milvus.drop(new)
            return ("Succeeded", f"dropped {new}") if dropped else ("Skipped", f"{new} was already gone")
        return "Skipped", f"unknown action {action}"

    def record_execution(self, record: Json) -> None:
        """Appends the execution to the policy's status, once."""
        name = record["policy"]
        try:
            policy = cast(
                Json,
                self.context.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, "rollbackpolicies", name
                ),
            )
        except ApiException as error:
            if error.status == 404:
                return
            raise
        status = policy.get("status") or {}
        executions = list(status.get("executions") or [])
        if any(
            e.get("plan") == self.name and e.get("executedAt") == record["executedAt"] for e in executions
        ):
            return
        executions.append(
            {
                "plan": self.name,
                "phase": record["phase"],
                "trigger": record["trigger"],
                "metric": record["metric"],
                "threshold": record["threshold"],
                "observedValue": record["observedValue"],
                "steps": record["steps"],
                "executedAt": record["executedAt"],
            }
        )
        self.context.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            "rollbackpolicies",
            name,
            {
                "status": {
                    "executions": executions[-20:],
                    "triggerCount": int(status.get("triggerCount") or 0) + 1,
                    "lastExecutedAt": record["executedAt"],
                }
            },
            _content_type=MERGE_PATCH,
        )

    def publish_quality(self) -> None:
        quality = {**(self.status.get("quality") or {}), **(self.step.status.get("quality") or {})}
        gauge = self.context.metrics.plan_quality
        mean = (quality.get("coherence") or {}).get("mean")
        if mean is not None:
            gauge.labels(self.namespace, self.name, "coherence").set(float(mean))
        if quality.get("failureRate") is not None:
            gauge.labels(self.namespace, self.name, "failure_rate").set(float(quality["failureRate"]))
        if quality.get("processingTimeMsP95") is not None:
            gauge.labels(self.namespace, self.name, "processing_time_ms").set(
                float(quality["processingTimeMsP95"])
            )

    def planning(self) -> None:
        plan = self.stored_batch_plan()
        if plan is None:
            sql = self.spec.source.sql
            if sql is None:
                raise StepError(
                    "UnsupportedSource",
                    "the controller plans SQL sources only for now: use source.sql",
                    False,
                )
            try:
                plan = scan_sql_source(
                    self.source_url(), sql.table, sql.primary_key, self.spec.batching.records_per_job
                )
            except SourceUnavailable as error:
                raise StepError("SourceUnavailable", str(error)) from None
            encoded_size = len(plan.encode())
            if encoded_size > MAX_BATCH_PLAN_BYTES:
                raise StepError(
                    "TooManyBatches",
                    f"{plan.batches} batch boundaries take {encoded_size} bytes, more than a ConfigMap holds:"
                    " raise batching.recordsPerJob",
                )
            self.store_batch_plan(plan)
            self.event(
                "Planned",
                f"{plan.records_total} records in {plan.batches} batches of up to {plan.records_per_batch};"
                f" at most {self.spec.batching.max_concurrent_jobs} Jobs at a time",
            )
        self.step.status["progress"] = {
            **(self.status.get("progress") or {}),
            "batchesTotal": plan.batches,
            "recordsTotal": plan.records_total,
            "batchesSucceeded": compact_ranges.count(self.status.get("completedRanges")),
            "summary": summary(compact_ranges.count(self.status.get("completedRanges")), plan.batches),
        }
        if self.spec.approval.value == "Manual" and not self.spec.approved:
            self.condition(
                "Approved",
                False,
                "AwaitingApproval",
                f"{plan.batches} batches, {plan.records_total} records planned: approve with"
                " `kubectl vector approve` (sets spec.approved: true) to start",
            )
            self.progressing("AwaitingApproval", "waiting for approval")
            return
        self.condition(
            "Approved",
            True,
            "Approved" if self.spec.approval.value == "Manual" else "AutomaticApproval",
            "approved",
        )
        self.step.set_phase("Preparing")
        self.progressing("Preparing", "recording what to roll back to and preparing the target collection")

    def preparing(self) -> None:
        collection, collection_spec = self.target()
        ready: Json = next(
            (c for c in (collection.get("status") or {}).get("conditions", []) if c.get("type") == "Ready"),
            {},
        )
        if ready.get("status") != "True":
            raise StepError(
                "WaitingForTarget",
                f"VectorCollection {self.spec.target_ref.name} is not Ready yet"
                f" ({ready.get('reason', 'no status yet')})",
                warning=False,
            )
        milvus = self.milvus(self.endpoint(collection_spec))
        alias = collection_spec.collection_name
        layout = layout_of(collection_spec)
        previous = self.status.get("previousPhysicalCollection") or milvus.alias_target(alias)
        if previous is None:
            raise StepError("WaitingForTarget", f"alias {alias} points at no collection yet", warning=False)
        up_to_date: Json = next(
            (
                c
                for c in (collection.get("status") or {}).get("conditions", [])
                if c.get("type") == "UpToDate"
            ),
            {},
        )
        if self.spec.mode == MigrationMode.IN_PLACE and up_to_date.get("reason") == "MigrationRequired":
            raise StepError(
                "InPlaceCannotMigrate",
                f"{up_to_date.get('message', 'the vector space changed')}; InPlace writes into the serving"
                " collection, which keeps the old vector space: use mode: BlueGreen",
            )
        if self.spec.mode == MigrationMode.BLUE_GREEN:
            new = self.status.get("newPhysicalCollection") or next_physical_name(alias, milvus.names())
            if new not in milvus.names():
                milvus.create(new, layout)
                self.event("CollectionCreated", f"created {new} to fill; {alias} keeps serving {previous}")
        else:
            new = previous
        self.step.status.update(
            previousPhysicalCollection=previous, newPhysicalCollection=new, startedAt=timestamp(_now())
        )
        self.step.set_phase("Generating")
        self.event("Generating", f"filling {new}; rollback target is {previous}")
        self.progressing("Generating", f"launching embedding Jobs into {new}")

    def generating(self) -> None:
        plan = self.stored_batch_plan()
        if plan is None:
            raise StepError(
                "BatchPlanMissing", f"ConfigMap {self.config_map_name} is gone: recreate the plan"
            )
        _, collection_spec = self.target()
        endpoint = self.endpoint(collection_spec)
        physical = str(self.status["newPhysicalCollection"])
        jobs, pods = self.jobs_and_pods()
        running: set[int] = set()
        failed: set[int] = {
            int(f["batch"])
            for f in self.status.get("recentFailures") or []
            if f.get("reason") == "BatchFailed"
        }
        finished_folded: list[str] = []
        status_now: Json = dict(self.status)
        for job in jobs:
            index = int(job["metadata"]["labels"][BATCH_LABEL])
            outcome = job_outcome(job)
            if outcome is None:
                running.add(index)
                continue
            if compact_ranges.contains(status_now.get("completedRanges"), index) or index in failed:
                finished_folded.append(job["metadata"]["name"])
                continue
            result = termination_result(pods.get(job["metadata"]["name"], []))
            if outcome == "Complete" and result is not None and result.status.value == "Succeeded":
                folded = fold_success(status_now, index, result)
                status_now.update(folded)
                self.step.status.update(folded)
            else:
                reason = (
                    f"{result.reason.value}: {result.message}"
                    if result
                    else "no result in the pod's termination message"
                )
                entry = failure_entry(
                    index, "BatchFailed", f"batch {index} failed after its retries: {reason}", _now()
                )
                failures = with_failure(status_now, entry)
                status_now["recentFailures"] = failures
                self.step.status["recentFailures"] = failures
                failed.add(index)
                self.event("BatchFailed", entry["message"], warning=True)
        self.cleanup_jobs(finished_folded)
        completed = status_now.get("completedRanges")
        succeeded = compact_ranges.count(completed)
        progress = dict(status_now.get("progress") or {})
        records_done = int(progress.get("recordsDone") or 0)
        progress.update(
            batchesTotal=plan.batches,
            recordsTotal=plan.records_total,
            batchesSucceeded=succeeded,
            batchesFailed=len(failed),
            batchesRunning=len(running),
            percent=round(100.0 * succeeded / plan.batches, 2) if plan.batches else 100.0,
            summary=summary(succeeded, plan.batches),
        )
        self.step.status["progress"] = progress
        started = _parse_time(self.current("startedAt"))
        remaining = ""
        if started is not None:
            elapsed = max((_now() - started).total_seconds(), 1e-3)
            rate = records_done / elapsed
            self.step.status["throughput"] = {
                **(status_now.get("throughput") or {}),
                "recordsPerSecond": round(rate, 3),
            }
            if rate > 0 and plan.records_total > records_done:
                remaining = f", about {_duration_text((plan.records_total - records_done) / rate)} left"
        self.quality_warning(status_now)
        if failed:
            self.step.set_phase("Failed")
            self.step.status["completedAt"] = timestamp(_now())
            message = (
                f"{len(failed)} batch(es) failed for good (see status.recentFailures);"
                f" {physical} is not served"
            )
            self.condition("Failed", True, "BatchFailed", message)
            self.progressing("BatchFailed", message, holds=False)
            self.event("Failed", message, warning=True)
            return
        if succeeded == plan.batches:
            self.step.set_phase("Validating")
            self.progressing("Validating", f"all {plan.batches} batches written; validating {physical}")
            self.event("Generated", f"all {plan.batches} batches written ({records_done} records)")
            return
        if self.spec.paused:
            if self.status.get("phase") != "Paused":
                self.event("Paused", f"no new Jobs; {len(running)} running Job(s) finish")
            self.step.set_phase("Paused")
            self.progressing(
                "Paused",
                f"paused at {summary(succeeded, plan.batches)}: set spec.paused: false to resume",
                holds=False,
            )
            return
        if self.status.get("phase") == "Paused":
            self.event("Resumed", f"resuming at {summary(succeeded, plan.batches)}")
        self.step.set_phase("Generating")
        unschedulable = unschedulable_message(pods, _now())
        launch = next_batches(
            plan.batches, completed, running, failed, self.spec.batching.max_concurrent_jobs
        )
        for index in launch:
            self.launch(index, plan, collection_spec, endpoint, physical)
        if unschedulable:
            self.progressing("Unschedulable", unschedulable, holds=False)
        else:
            self.progressing(
                "Generating",
                f"{summary(succeeded, plan.batches)} batches done, {len(running) + len(launch)} running"
                f"{remaining}",
            )

    def launch(
        self,
        index: int,
        plan: BatchPlan,
        collection: VectorCollectionSpec,
        endpoint: MilvusEndpoint,
        physical: str,
    ) -> None:
        try:
            assignment = batch_assignment(
                namespace=self.namespace,
                plan=self.name,
                index=index,
                plan_spec=self.spec,
                collection_spec=collection,
                milvus_uri=endpoint.uri,
                physical=physical,
                key_range=plan.key_range(index),
            )
        except (UnsupportedSource, ValidationError) as error:
            raise StepError(
                "InvalidAssignment", f"cannot build batch {index}'s assignment: {error}", False
            ) from None
        sql = self.spec.source.sql
        assert sql is not None  # batch_assignment refused anything else
        secrets = [SecretEnv(SOURCE_URL_ENV, sql.url_secret_ref.name, sql.url_secret_ref.key)]
        if collection.milvus.secret_ref is not None:
            ref = collection.milvus.secret_ref
            secrets.append(SecretEnv(MILVUS_TOKEN_ENV, ref.name, ref.key))
        settings = self.context.settings
        manifest = batch_job(
            plan=self.name,
            plan_uid=self.uid,
            index=index,
            assignment=assignment,
            secrets=secrets,
            settings=JobSettings(image=settings.worker_image, command=settings.worker_command),
            overrides=self.spec.batching.pod_template,
        )
        try:
            self.context.batch.create_namespaced_job(self.namespace, V1Job.model_validate(manifest))
        except ApiException as error:
            if error.status != 409:  # it exists: adopted, it is ours by name and owner
                raise

    def jobs_and_pods(self) -> tuple[list[Json], dict[str, list[Json]]]:
        selector = f"{PLAN_LABEL}={plan_label_value(self.name)}"
        jobs = _raw(
            self.context.batch.list_namespaced_job(
                self.namespace, label_selector=selector, _preload_content=False
            )
        )
        pods = _raw(
            self.context.core.list_namespaced_pod(
                self.namespace, label_selector=selector, _preload_content=False
            )
        )
        by_job: dict[str, list[Json]] = {}
        for pod in pods["items"]:
            job = (pod["metadata"].get("labels") or {}).get("job-name")
            if job:
                by_job.setdefault(job, []).append(pod)
        uid = self.uid
        mine = [
            job
            for job in jobs["items"]
            if any(ref.get("uid") == uid for ref in job["metadata"].get("ownerReferences") or [])
        ]
        return mine, by_job

    def cleanup_jobs(self, names: list[str]) -> None:
        for name in names:
            try:
                self.context.batch.delete_namespaced_job(
                    name, self.namespace, body=V1DeleteOptions(propagation_policy="Background")
                )
            except ApiException as error:
                if error.status != 404:
                    raise

    def quality_warning(self, status: Mapping[str, Any]) -> None:
        quality = status.get("quality") or {}
        thresholds = self.spec.quality
        findings = []
        mean = (quality.get("coherence") or {}).get("mean")
        if (
            mean is not None
            and thresholds.coherence.warning is not None
            and mean < thresholds.coherence.warning
        ):
            findings.append(f"coherence {mean:.3f} is below the warning level {thresholds.coherence.warning}")
        rate = quality.get("failureRate")
        if (
            rate is not None
            and thresholds.failure_rate.warning is not None
            and rate > thresholds.failure_rate.warning
        ):
            findings.append(
                f"failure rate {rate:.3f} is above the warning level {thresholds.failure_rate.warning}"
            )
        p95 = quality.get("processingTimeMsP95")
        limit = thresholds.processing_time_ms.warning
        if p95 is not None and limit is not None and p95 > limit:
            findings.append(f"batch processing p95 {p95:.0f} ms is above the warning level {limit} ms")
        previous: Json = next(
            (c for c in self.status.get("conditions") or [] if c.get("type") == "QualityDegraded"), {}
        )
        if findings:
            message = "; ".join(findings)
            if previous.get("status") != "True":
                self.event("QualityDegraded", message, warning=True)
            self.condition("QualityDegraded", True, "WarningThresholdCrossed", message)
        else:
            self.condition(
                "QualityDegraded", False, "WithinThresholds", "quality is within the warning levels"
            )

    def validating(self) -> None:
        _, collection_spec = self.target()
        milvus = self.milvus(self.endpoint(collection_spec))
        physical = str(self.status["newPhysicalCollection"])
        layout: CollectionLayout = layout_of(collection_spec)
        milvus.flush(physical)
        figures = milvus.validation_probe(physical, layout, self.spec.quality.sample_size)
        progress = self.status.get("progress") or {}
        done = int(progress.get("recordsDone") or 0)
        quality = dict(self.status.get("quality") or {})
        quality.update(
            recallAtK=None if figures.recall_at_k is None else round(figures.recall_at_k, 4),
            searchLatencyP95Ms=None
            if figures.search_latency_p95_ms is None
            else round(figures.search_latency_p95_ms, 3),
        )
        if figures.retrievability is not None and quality.get("retrievability") is None:
            quality["retrievability"] = round(figures.retrievability, 4)
        self.step.status["quality"] = {k: v for k, v in quality.items() if v is not None}
        problems = []
        if self.spec.mode == MigrationMode.BLUE_GREEN and figures.entities != done:
            problems.append(f"{physical} holds {figures.entities} entities, but the batches wrote {done}")
        coherence = (quality.get("coherence") or {}).get("mean")
        critical = self.spec.quality.coherence.critical
        if coherence is not None and critical is not None and coherence < critical:
            problems.append(f"coherence {coherence:.3f} is below the critical level {critical}")
        rate = quality.get("failureRate")
        rate_critical = self.spec.quality.failure_rate.critical
        if rate is not None and rate_critical is not None and rate > rate_critical:
            problems.append(f"failure rate {rate:.3f} is above the critical level {rate_critical}")
        if problems:
            message = (
                "validation failed: "
                + "; ".join(problems)
                + f"; the alias keeps serving {self.status.get('previousPhysicalCollection')}"
            )
            self.step.set_phase("Failed")
            self.step.status["completedAt"] = timestamp(_now())
            self.condition("Failed", True, "ValidationFailed", message)
            self.progressing("ValidationFailed", message, holds=False)
            self.event("ValidationFailed", message, warning=True)
            return
        self.event(
            "Validated",
            f"{physical}: {figures.entities} entities, retrievability {figures.retrievability}, recall@10"
            f" {quality.get('recallAtK')}, search p95 {quality.get('searchLatencyP95Ms')} ms",
        )
        self.step.set_phase("CuttingOver")
        self.progressing("CuttingOver", f"validated {physical}")

    def cutting_over(self) -> None:
        _, collection_spec = self.target()
        alias = collection_spec.collection_name
        physical = str(self.status["newPhysicalCollection"])
        previous = self.status.get("previousPhysicalCollection")
        if self.spec.mode == MigrationMode.BLUE_GREEN:
            if self.spec.cutover.value == "Manual" and not self.spec.cutover_approved:
                self.progressing(
                    "AwaitingCutoverApproval",
                    f"{physical} is validated: set spec.cutoverApproved: true to swing {alias} to it",
                )
                return
            milvus = self.milvus(self.endpoint(collection_spec))
            if milvus.alias_target(alias) != physical:
                milvus.apply(PointAlias(physical, exists=True), alias, layout_of(collection_spec))
                self.event("CutOver", f"alias {alias} now serves {physical} (was {previous})")
            self.context.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self.namespace,
                "vectorcollections",
                self.spec.target_ref.name,
                {"status": {"physicalCollection": physical, "previousPhysicalCollection": previous}},
                _content_type=MERGE_PATCH,
            )
        self.step.set_phase("Succeeded")
        self.step.status["completedAt"] = timestamp(_now())
        progress = self.status.get("progress") or {}
        message = (
            f"{progress.get('recordsDone', 0)} records embedded, {progress.get('recordsSkipped', 0)} skipped"
            f" ({progress.get('skippedByReason') or {}}), of {progress.get('recordsRead', 0)} read;"
            f" {alias} serves {physical}"
        )
        self.condition("Complete", True, "Succeeded", message)
        self.progressing("Succeeded", message, holds=False)
        self.event("Succeeded", message)

    def retire_previous(self) -> None:
        """After the retention period, drop the collection the alias served before the cutover."""
        previous = self.status.get("previousPhysicalCollection")
        new = self.status.get("newPhysicalCollection")
        completed = _parse_time(self.status.get("completedAt"))
        if self.spec.mode != MigrationMode.BLUE_GREEN or not previous or previous == new or completed is None:
            return
        if _now() < completed + parse_duration(self.spec.previous_collection_retention):
            return
        try:
            _, collection_spec = self.target()
            milvus = self.milvus(self.endpoint(collection_spec))
            if milvus.alias_target(collection_spec.collection_name) == previous:
                return  # rolled back to it: it serves again
            if milvus.drop(previous):
                self.event(
                    "PreviousCollectionDropped",
                    f"retention {self.spec.previous_collection_retention} passed: dropped {previous}",
                )
        except (StepError, MilvusUnavailable) as error:
            self.logger.warning(f"cannot retire {previous} yet: {error}")


def _duration_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def job_outcome(job: Mapping[str, Any]) -> str | None:
    """Complete or Failed once the Job controller decided, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return None


def termination_result(pods: list[Json]) -> WorkerResult | None:
    """The worker result of the Job's last finished pod."""
    finished = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated:
                finished.append((terminated.get("finishedAt") or "", terminated.get("message") or ""))
    for _, message in sorted(finished, reverse=True):
        try:
            return WorkerResult.model_validate_json(message)
        except ValidationError:
            continue
    return None


def unschedulable_message(pods: Mapping[str, list[Json]], now: datetime.datetime) -> str | None:
    """The scheduler's message for a pod that has waited unschedulable for a while."""
    for job_pods in pods.values():
        for pod in job_pods:
            for condition in (pod.get("status") or {}).get("conditions") or []:
                if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                    since = _parse_time(condition.get("lastTransitionTime"))
                    if since is not None and (now - since).total_seconds() >= UNSCHEDULABLE_AFTER_S:
                        name = pod["metadata"]["name"]
                        return f"pod {name} cannot be scheduled: {condition.get('message', '')}"
    return None


def _raw(response: object) -> Json:
    body: Json = json.loads(cast(Any, response).data)
    return body


MERGE_PATCH = "application/merge-patch+json"


def step_plan(context: OperatorContext, body: kopf.Body, logger: logging.Logger | kopf.Logger) -> None:
    """One step, under the plan's lock: the plan is read fresh and its status written directly
    (not through Kopf's deferred patch), so the next step, from a timer or a change, always sees
    what this one decided and a finished batch is never folded twice."""
    namespace, name, uid = str(body.metadata.namespace), str(body.metadata.name), str(body.metadata.uid)
    with context.lock_for(uid):
        try:
            fresh = cast(
                Json, context.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            )
        except ApiException as error:
            if error.status == 404:
                return
            raise
        if fresh["metadata"].get("deletionTimestamp"):
            return
        run = PlanRun(context, fresh, logger)
        try:
            run.run()
            result = "ok"
        except StepError as error:
            run.progressing(error.reason, str(error), holds=False)
            previous: Json = next(
                (c for c in run.status.get("conditions") or [] if c.get("type") == "Progressing"), {}
            )
            if previous.get("reason") != error.reason:
                run.event(error.reason, str(error), warning=error.warning)
            result = "config_error"
        except MilvusUnavailable as error:
            run.progressing("MilvusUnavailable", str(error), holds=False)
            result = "milvus_unavailable"
        status = dict(run.step.status)
        status["observedGeneration"] = run.generation
        if run.step.conditions:
            status["conditions"] = merged_conditions(
                run.status.get("conditions"), run.step.conditions, run.generation, _now()
            )
        context.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE_PATCH
        )
    context.metrics.reconciles.labels(KIND, result).inc()


def delete_plan(
    context: OperatorContext, body: kopf.Body, retry: int, logger: logging.Logger | kopf.Logger
) -> None:
    """Jobs go with the plan (owner references); a BlueGreen plan that never cut over drops the
    collection it was filling."""
    status = dict(body.status or {})
    context.forget(str(body.metadata.uid))
    spec = MigrationPlanSpec.model_validate(dict(body.spec))
    new, previous = status.get("newPhysicalCollection"), status.get("previousPhysicalCollection")
    if (
        spec.mode != MigrationMode.BLUE_GREEN
        or not new
        or new == previous
        or status.get("phase") == "Succeeded"
    ):
        return
    run = PlanRun(context, dict(body), logger)
    try:
        _, collection_spec = run.target()
        milvus = run.milvus(run.endpoint(collection_spec))
        if milvus.alias_target(collection_spec.collection_name) == new:
            return  # it serves: never drop what applications query
        if milvus.drop(new):
            kopf.info(
                body, reason="PartialCollectionDropped", message=f"dropped {new}, which this plan was filling"
            )
    except (StepError, MilvusUnavailable) as error:
        if retry < 5:
            raise kopf.TemporaryError(f"cannot drop {new} yet: {error}", delay=10) from None
        logger.warning(f"gave up dropping {new}: {error}")
        kopf.warn(body, reason="DeletionIncomplete", message=f"gave up dropping {new}: {error}")


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    resource = (GROUP, VERSION, PLURAL)

    def on_change(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        step_plan(context, body, logger)

    def on_delete(body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any) -> None:
        delete_plan(context, body, retry, logger)

    kopf.on.create(*resource, registry=registry, id="step")(on_change)
    kopf.on.update(*resource, registry=registry, id="step", field="spec")(on_change)
    kopf.timer(*resource, registry=registry, id="tick", interval=context.settings.plan_interval_s)(on_change)
    kopf.on.delete(*resource, registry=registry, id="cleanup", retries=6)(on_delete)
