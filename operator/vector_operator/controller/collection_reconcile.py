"""One VectorCollection reconcile: observe Milvus, let collection.reconciliation decide, apply its
steps, assess, and write status through Kopf's patch (plain fields as a merge patch, conditions as
a function on the freshest object, so `lastTransitionTime` moves only on a flip). It serves create,
update, resume and the periodic check (self-healing, entity count, canary probe)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import kopf
from pydantic import ValidationError

from vector_operator.api.collection_reindex import ReindexState, ReindexStatus
from vector_operator.api.collection_tuning import TuningState, TuningStatus
from vector_operator.api.rollbackpolicy import Execution, GuardedPhase, RollbackAction, TriggerMetric
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection import reindex, reindex_guard
from vector_operator.collection.index_support import IndexSupport
from vector_operator.collection.milvus_layout import CollectionLayout, layout_of
from vector_operator.collection.ownership import Owner
from vector_operator.collection.reconciliation import (
    Assessment,
    Notice,
    ObservedMilvus,
    ObservedPhysical,
    Plan,
    assess,
    plan_reconciliation,
    serving_layout,
)
from vector_operator.collection.reindex_guard import Guard
from vector_operator.collection.tuned_layout import effective_layout
from vector_operator.collection.tuning_condition import tuned_condition
from vector_operator.controller.collection_reindex import Reindexer, ReindexRun
from vector_operator.controller.context import OperatorContext
from vector_operator.kube import plans, policies
from vector_operator.kube.custom_objects import read_custom_object
from vector_operator.kube.secrets import SecretReader, SecretUnavailable
from vector_operator.kube.targets import patch_collection_status
from vector_operator.milvus.collections import AliasMoved, MilvusCollections
from vector_operator.milvus.connection import MilvusUnavailable
from vector_operator.milvus.endpoints import MilvusNotConfigured, endpoint_for
from vector_operator.rollback.triggers import parse_duration
from vector_operator.status_conditions import ConditionUpdate, condition_in, merged_conditions, timestamp

KIND = "VectorCollection"
PLURAL = "vectorcollections"
_INDEX_STATES = {"Finished": "Finished", "InProgress": "InProgress", "Failed": "Failed"}
Json = dict[str, Any]
T = TypeVar("T", ReindexStatus, TuningStatus)
_steps_log = logging.getLogger(__name__)
"""Each step in the operator's log only: the plan's notices are the Events (CollectionCreated,
AliasCreated, ...); the object's Kopf logger would post every step as one more Event."""


def _typed(model: type[T], raw: Any) -> T | None:
    """A status part in its model, or None when absent or written by an incompatible version."""
    try:
        return model.model_validate(raw) if raw else None
    except ValidationError:
        return None


def _document(model: ReindexStatus | TuningStatus | None) -> Json | None:
    return None if model is None else model.model_dump(by_alias=True, mode="json")


@dataclass
class _Outcome:
    plan: Plan
    assessment: Assessment
    physical: ObservedPhysical | None
    entities: int | None
    latency: tuple[float, float] | None
    reindex: ReindexRun | None = None
    retired: str | None = None


class _Reconcile:
    def __init__(self, context: OperatorContext, body: kopf.Body, patch: kopf.Patch) -> None:
        meta = body.metadata
        self.context, self.body, self.patch = context, body, patch
        self.status: Json = dict(body.status or {})
        self.namespace, self.name, self.uid = str(meta.namespace), str(meta.name), str(meta.uid)
        self.generation = meta.get("generation")
        self.now = datetime.datetime.now(datetime.UTC)
        self.spec = VectorCollectionSpec.model_validate(dict(body.spec))
        self.reindex_status = _typed(ReindexStatus, self.status.get("reindex"))
        self.tuning_status = _typed(TuningStatus, self.status.get("tuning"))
        self.layout: CollectionLayout = effective_layout(layout_of(self.spec), self.tuning_status)
        self.me = Owner(self.namespace, self.name, self.uid)
        self._active_plans: list[str] | None = None
        self._guards: tuple[Guard, ...] | None = None
        self.reindex_changed = False  # status.reindex changed outside a re-index run
        self.swung = False  # the alias moved to a re-index's copy in this reconcile
        self.copy_dropped = False  # a policy dropped the copy after reverting the alias

    def active_plans(self) -> list[str]:
        if self._active_plans is None:
            self._active_plans = plans.active_plans(self.context.custom, self.namespace, self.name)
        return self._active_plans

    def post(self, notice: Notice) -> None:
        (kopf.warn if notice.warning else kopf.info)(self.body, reason=notice.reason, message=notice.message)

    def report_reindex(self, status: ReindexStatus) -> None:
        """Progress while the copy runs, written at once (the reconcile's own patch comes at its end)."""
        progress = self.context.metrics.reindex_progress
        progress.labels(self.namespace, self.name, "copied").set(status.copied)
        progress.labels(self.namespace, self.name, "total").set(status.total)
        if status.vectors_per_second is not None:
            progress.labels(self.namespace, self.name, "vectors_per_second").set(status.vectors_per_second)
        document: Json = {"reindex": _document(status)}
        if status.state in (ReindexState.COPYING, ReindexState.VALIDATING):
            document["phase"] = "Reindexing"
        patch_collection_status(self.context.custom, self.namespace, self.name, document)

    def fresh_reindex_status(self) -> ReindexStatus | None:
        """status.reindex as stored now: the body Kopf handed this handler may predate what an
        earlier handler of this object wrote (they run one after the other under its lock)."""
        body = read_custom_object(self.context.custom, self.namespace, PLURAL, self.name)
        self.reindex_status = _typed(ReindexStatus, ((body or {}).get("status") or {}).get("reindex"))
        return self.reindex_status

    def conditions(self, updates: list[ConditionUpdate]) -> None:
        generation, now = self.generation, self.now

        def apply(fresh: kopf.RawBody) -> None:
            status = fresh.setdefault("status", {})
            status["conditions"] = merged_conditions(status.get("conditions"), updates, generation, now)

        self.patch.fns.append(apply)

    def not_ready(self, reason: str, message: str) -> None:
        previous = condition_in(self.status, "Ready")
        if previous.get("reason") != reason or previous.get("status") != "False":
            kopf.warn(self.body, reason=reason, message=message)
        self.conditions([ConditionUpdate.of("Ready", False, reason, message)])
        phase = "Degraded" if self.status.get("physicalCollection") else "Pending"
        self.patch.status.update(phase=phase, observedGeneration=self.generation)
        self.context.metrics.collection_phase(self.uid, phase)

    def reindex(
        self,
        milvus: MilvusCollections,
        observed: ObservedMilvus,
        plan: Plan,
        logger: logging.Logger | kopf.Logger,
    ) -> ReindexRun:
        situation = reindex.ReindexSituation(
            alias=self.spec.collection_name,
            serving=plan.physical,
            names=tuple(observed.physicals),
            index=self.layout.index,
            entities=milvus.count(plan.physical),
            active_plans=tuple(self.active_plans()),
            status=self.fresh_reindex_status(),
            now=self.now,
        )
        reindexer = Reindexer(
            milvus=milvus,
            layout=self.layout,
            owner=self.me,
            spec=self.spec.reindex,
            page_size=self.context.settings.copy_page_size,
            report=self.report_reindex,
            announce=self.post,
            guards=self.guards,
            record=self.record,
            collection=self.name,
            active_plans=lambda: plans.active_plans(self.context.custom, self.namespace, self.name),
            logger=logger,
        )
        run = reindexer.run(situation)
        self.reindex_status = run.status
        self.swung = run.swung
        return run

    def retire(self, milvus: MilvusCollections, observed: ObservedMilvus) -> str | None:
        """Drops what a re-index left for a while (the collection it replaced, or a copy a
        RollbackPolicy reverted) once the retention, and every watching policy's window, passed."""
        status, serving, names = self.reindex_status, observed.alias_target, tuple(observed.physicals)
        retention = parse_duration(self.spec.reindex.retention)
        if serving is None or reindex.previous_to_retire(status, serving, names, self.now, retention) is None:
            return None  # decided without listing the policies, on most reconciles
        windows = [parse_duration(guard.spec.post_cutover_window) for guard in self.guards()]
        retire = reindex.previous_to_retire(status, serving, names, self.now, max([retention, *windows]))
        if retire is None or self.active_plans():
            return None
        return retire if milvus.drop(retire, self.me) else None

    def sweep_scratch(self, milvus: MilvusCollections, observed: ObservedMilvus) -> None:
        """Drops a tuning study's scratch collections when no study runs (one was cut short and
        spec.tuning removed since, so no daemon is left to drop them). The study's daemon writes
        Running before it makes any, and the status is read afresh before dropping them."""
        if not observed.scratch or self.running_study(self.tuning_status):
            return
        body = read_custom_object(self.context.custom, self.namespace, PLURAL, self.name) or {}
        if self.running_study(_typed(TuningStatus, (body.get("status") or {}).get("tuning"))):
            return
        for name in observed.scratch:
            milvus.drop(name, self.me)

    def running_study(self, status: TuningStatus | None) -> bool:
        return self.spec.tuning is not None and status is not None and status.state is TuningState.RUNNING

    def finish_interrupted_swing(self, observed: ObservedMilvus) -> None:
        """A re-index whose operator stopped between the alias swing and recording it: the alias
        shows it swung, so it succeeded."""
        status = self.reindex_status
        unfinished = (ReindexState.COPYING, ReindexState.VALIDATING)
        if status is None or status.state not in unfinished or observed.alias_target != status.target:
            return
        status = self.fresh_reindex_status()
        if status is None or status.state not in unfinished or observed.alias_target != status.target:
            return
        status.state = ReindexState.SUCCEEDED
        status.finished_at = self.now.replace(microsecond=0)
        status.message = (
            f"alias {self.spec.collection_name} serves {status.target} ({status.index}); the operator stopped"
            " just after the swing"
        )
        self.reindex_changed = self.swung = True
        self.report_reindex(status)

    def guards(self) -> tuple[Guard, ...]:
        if self._guards is None:
            self._guards = policies.guarding_collection(self.context.custom, self.namespace, self.name)
        return self._guards

    def record(self, policy: str, execution: Execution) -> None:
        policies.record_execution(self.context.custom, self.namespace, policy, execution)

    def guard_after_swing(self, milvus: MilvusCollections, serving: str, p95_ms: float) -> bool:
        """A RollbackPolicy's PostCutover trigger on the canary probe after a re-index's swing: the
        alias goes back to the replaced collection (RevertAlias). True when it moved."""
        status = self.reindex_status
        if status is None or status.state is not ReindexState.SUCCEEDED or status.fired is not None:
            return False
        if status.finished_at is None or status.target != serving:
            return False
        armed = reindex_guard.armed_after_swing(self.guards(), status.finished_at, self.now)
        if not armed:
            return False
        status = self.fresh_reindex_status()  # fired once, even when an earlier handler just did
        if status is None or status.state is not ReindexState.SUCCEEDED or status.fired is not None:
            return False
        fired = reindex_guard.firing(
            armed, GuardedPhase.POST_CUTOVER, {TriggerMetric.SEARCH_LATENCY_P95_MS: p95_ms}
        )
        if fired is None:
            return False
        status.fired = fired.summary()
        self.reindex_changed = True
        reverted = dropped = None
        if fired.wants(RollbackAction.REVERT_ALIAS):
            try:
                milvus.swing_alias(self.spec.collection_name, status.source, expected=status.target)
                reverted = f"alias {self.spec.collection_name} points at {status.source} again"
            except AliasMoved as error:
                self.post(Notice("AliasMoved", str(error), warning=True))
        if reverted is not None:
            status.state, status.message = ReindexState.ROLLED_BACK, f"{fired.summary()}: {reverted}"
            if fired.wants(RollbackAction.DROP_PARTIAL_COLLECTION) and milvus.drop(status.target, self.me):
                dropped = status.target
                self.copy_dropped = True
        self.report_reindex(status)  # at once, as for the copy
        steps = reindex_guard.steps_after_swing(fired, reverted, dropped)
        self.record(fired.guard.name, reindex_guard.execution(fired, self.name, steps, self.now))
        outcome = reverted or "nothing was moved: the policy has no RevertAlias"
        self.post(Notice("ReindexRolledBack", f"{fired.summary()}: {outcome}", warning=True))
        return reverted is not None

    def converge(
        self, milvus: MilvusCollections, support: IndexSupport | None, logger: logging.Logger | kopf.Logger
    ) -> tuple[Plan, ObservedMilvus, ReindexRun | None, str | None]:
        """Makes Milvus serve the spec: steps, a re-index, the retirement of a replaced collection."""
        alias = self.spec.collection_name
        observed = milvus.observe(alias)
        self.finish_interrupted_swing(observed)
        self.sweep_scratch(milvus, observed)
        recorded = self.status.get("physicalCollection")
        plan = plan_reconciliation(self.layout, alias, recorded, observed, self.me, support)
        for step in plan.steps:
            _steps_log.info(f"{self.namespace}/{self.name}: {alias}: {step}")
            milvus.apply(step, alias, self.layout)
        if plan.steps:
            observed = milvus.observe(alias)
        reindex_run = None
        if plan.reindex:
            reindex_run = self.reindex(milvus, observed, plan, logger)
            if reindex_run.swung:
                observed = milvus.observe(alias)
                notices = plan.notices
                plan = plan_reconciliation(
                    self.layout, alias, observed.alias_target, observed, self.me, support
                )
                plan.notices[:0] = notices
        retired = self.retire(milvus, observed)
        if retired is not None:
            observed = milvus.observe(alias)
            plan.notices.append(
                Notice(
                    "PreviousCollectionDropped",
                    f"dropped {retired}, left by a re-index: its retention (reindex.retention, and the"
                    " postCutoverWindow of every RollbackPolicy watching) passed",
                )
            )
        return plan, observed, reindex_run, retired

    def up_to_date(self, plan: Plan, run: ReindexRun | None) -> ConditionUpdate | None:
        """UpToDate while an index change waits, runs, failed or was rolled back."""
        if not plan.reindex:
            return None
        if run is not None and run.hold is not None:
            return ConditionUpdate.of("UpToDate", False, run.hold.reason, run.hold.message)
        status = run.status if run is not None else self.reindex_status
        if status is not None and status.state is ReindexState.ROLLED_BACK:
            return ConditionUpdate.of(
                "UpToDate", False, "ReindexRolledBack", f"{status.message}; change spec.index to try again"
            )
        return reindex.condition(status) if run is not None and status is not None else None

    def evaluate(
        self,
        milvus: MilvusCollections,
        plan: Plan,
        observed: ObservedMilvus,
        run: ReindexRun | None,
        probe: bool,
    ) -> _Outcome:
        physical = observed.physicals.get(plan.physical)
        entities = (
            milvus.count(plan.physical)
            if physical is not None and physical.loaded and not plan.conflict
            else None
        )
        # A collection recreated empty stays Degraded until something refills it.
        was_lost = condition_in(self.status, "Degraded").get("reason") == "PhysicalCollectionLost"
        if was_lost and entities == 0 and self.status.get("physicalCollection") == plan.physical:
            plan.lost = True
        assessment = assess(self.layout, plan.physical, observed, plan)
        if (update := self.up_to_date(plan, run)) is not None:
            assessment.conditions[:] = [u for u in assessment.conditions if u.type != "UpToDate"] + [update]
        if self.spec.tuning is not None:
            assessment.conditions.append(
                tuned_condition(self.tuning_status, self.spec.tuning.trials, self.reindex_status)
            )
        serving = any(u.type == "Ready" and u.status == "True" for u in assessment.conditions)
        latency = None
        if probe and serving and physical is not None:
            latency = milvus.probe_search_latency(
                self.spec.collection_name, serving_layout(self.layout, physical)
            )
        return _Outcome(plan, assessment, physical, entities, latency, run)

    def run(self, milvus: MilvusCollections, logger: logging.Logger | kopf.Logger, probe: bool) -> _Outcome:
        support = milvus.index_support()
        plan, observed, reindex_run, retired = self.converge(milvus, support, logger)
        outcome = self.evaluate(milvus, plan, observed, reindex_run, probe)
        latency = outcome.latency
        if latency is not None and self.guard_after_swing(milvus, plan.physical, latency[1]):
            alias = self.spec.collection_name
            observed = milvus.observe(alias)
            notices = plan.notices
            plan = plan_reconciliation(self.layout, alias, observed.alias_target, observed, self.me, support)
            plan.notices[:0] = notices
            outcome = self.evaluate(milvus, plan, observed, None, probe=False)
            outcome.latency = latency
        outcome.retired = retired
        return outcome

    def report_reindex_outcome(self, outcome: _Outcome) -> None:
        """status.reindex, and which collection served before, after a swing or a revert."""
        status, patch, metrics = self.reindex_status, self.patch, self.context.metrics
        if status is None or (outcome.reindex is None and not self.reindex_changed):
            return
        patch.status["reindex"] = _document(status)
        alias = self.spec.collection_name
        reverted = status.state is ReindexState.ROLLED_BACK and self.reindex_changed
        if reverted:
            # The alias just went back: the copy is what served before, unless a policy dropped it.
            patch.status["previousPhysicalCollection"] = None if self.copy_dropped else status.target
            metrics.alias_swaps.labels(self.namespace, alias, "revert").inc()
        if self.swung:
            patch.status["previousPhysicalCollection"] = status.source
            metrics.alias_swaps.labels(self.namespace, alias, "reindex").inc()
            metrics.reindex_progress.labels(self.namespace, self.name, "copied").set(status.copied)
        if reverted or self.swung:  # the entity count belongs to the collection that serves now
            metrics.forget_entities(self.namespace, self.name, status.target if reverted else status.source)

    def announce(self, outcome: _Outcome) -> None:
        for notice in outcome.plan.notices:
            self.post(notice)
        for update in outcome.assessment.conditions:
            previous = condition_in(self.status, update.type)
            if (
                update.type not in ("UpToDate", "Degraded", "Ready")
                or previous.get("reason") == update.reason
            ):
                continue
            if (update.type, update.status) in (("UpToDate", "False"), ("Degraded", "True")):
                kopf.warn(self.body, reason=update.reason, message=update.message)
            elif (update.type, update.status) == ("Ready", "True"):
                kopf.info(
                    self.body,
                    reason="Ready",
                    message=f"alias {self.spec.collection_name} serves {outcome.plan.physical}",
                )
            elif update.reason in ("AliasInUse", "Conflict"):
                kopf.warn(self.body, reason=update.reason, message=update.message)

    def report(self, outcome: _Outcome) -> None:
        patch, metrics, physical = self.patch, self.context.metrics, outcome.physical
        self.conditions(outcome.assessment.conditions)
        phase = outcome.assessment.phase
        copying = (ReindexState.COPYING, ReindexState.VALIDATING)
        if phase == "Ready" and self.reindex_status is not None and self.reindex_status.state in copying:
            phase = "Reindexing"  # serving, while the copy's index is still being built
        patch.status.update(phase=phase, observedGeneration=self.generation)
        if outcome.plan.conflict is None:
            patch.status["physicalCollection"] = outcome.plan.physical
        self.report_reindex_outcome(outcome)
        if outcome.retired is not None and self.status.get("previousPhysicalCollection") == outcome.retired:
            patch.status["previousPhysicalCollection"] = None
        if physical is not None and physical.index is not None:
            index = physical.index
            patch.status["index"] = {
                "state": _INDEX_STATES.get(index.state, "Pending"),
                "indexedRows": index.indexed_rows,
                "pendingRows": index.pending_rows,
                "message": index.failure or None,
            }
        if outcome.entities is not None:
            patch.status["entityCount"] = outcome.entities
            metrics.entities.labels(self.namespace, self.name, outcome.plan.physical).set(outcome.entities)
        if outcome.latency is not None:
            p50, p95 = outcome.latency
            patch.status["quality"] = {
                "searchLatencyP50Ms": round(p50, 3),
                "searchLatencyP95Ms": round(p95, 3),
                "lastProbeTime": timestamp(self.now),
            }
            metrics.search_latency.labels(self.namespace, self.name, "0.5").set(p50)
            metrics.search_latency.labels(self.namespace, self.name, "0.95").set(p95)
        metrics.collection_phase(self.uid, phase)


def _reconcile(
    context: OperatorContext,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: logging.Logger | kopf.Logger,
    probe: bool,
) -> str:
    reconcile = _Reconcile(context, body, patch)
    try:
        reader = SecretReader(context.core, reconcile.namespace)
        endpoint = endpoint_for(reconcile.spec.milvus, context.settings.default_milvus_uri, reader)
    except (MilvusNotConfigured, SecretUnavailable) as error:
        reconcile.not_ready(type(error).__name__, str(error))
        return "config_error"
    context.remember_endpoint(reconcile.uid, endpoint)
    try:
        outcome = reconcile.run(
            MilvusCollections(context.clients, endpoint, context.metrics.observe_milvus_call), logger, probe
        )
    except MilvusUnavailable as error:
        reconcile.not_ready("MilvusUnavailable", str(error))
        logger.warning(str(error))
        return "milvus_unavailable"
    reconcile.announce(outcome)
    reconcile.report(outcome)
    return "ok"


def reconcile_collection(
    context: OperatorContext,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: logging.Logger | kopf.Logger,
    probe: bool,
) -> str:
    """Brings Milvus to the spec and writes status; returns the result label for metrics."""
    with context.lock_for(str(body.metadata.uid)):
        result = _reconcile(context, body, patch, logger, probe)
    context.metrics.reconciles.labels(KIND, result).inc()
    return result


def probe_due(status: Mapping[str, Any], interval_s: float) -> bool:
    last = (status.get("quality") or {}).get("lastProbeTime")
    if not last:
        return True
    try:
        moment = datetime.datetime.fromisoformat(str(last).replace("Z", "+00:00"))
    except ValueError:
        return True
    return (datetime.datetime.now(datetime.UTC) - moment).total_seconds() >= interval_s
