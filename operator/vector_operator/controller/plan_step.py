"""One step of a MigrationPlan, under the plan's lock: observe -> decide -> apply, then write the
typed status with the resourceVersion it was read at, then post the decided Events. A step whose
phase moved on looks again at once (a few rounds at most), so a plan goes from Planning to its
first Jobs without waiting for timer ticks. Nothing here decides anything."""

from __future__ import annotations

import datetime
import logging
from typing import Any, cast

import kopf

from vector_operator.controller import plan_metrics
from vector_operator.controller.context import OperatorContext
from vector_operator.controller.plan_effects import EffectRefused, apply_effects
from vector_operator.controller.plan_observer import Observed, observe
from vector_operator.kube import plans
from vector_operator.kube.secrets import SecretUnavailable
from vector_operator.migration.decide import decide
from vector_operator.migration.effects import (
    Decision,
    Effect,
    Event,
    LaunchJob,
    PinTarget,
    RecordHistory,
    StoreBatchPlan,
)
from vector_operator.migration.unposted_events import carried_over
from vector_operator.milvus.connection import MilvusUnavailable
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.status_conditions import ConditionUpdate, merged_conditions

KIND = "MigrationPlan"
MAX_ROUNDS = 8
log = logging.getLogger(__name__)


def _summary(effect: Effect) -> str:
    """An effect in one line (a Job's manifest is long: its batch says it all)."""
    if isinstance(effect, LaunchJob):
        return f"LaunchJob batch {effect.index} ({effect.manifest['metadata']['name']})"
    if isinstance(effect, StoreBatchPlan):
        return f"StoreBatchPlan {effect.plan.batches} batches"
    if isinstance(effect, PinTarget):
        return f"PinTarget generation {effect.generation}"
    if isinstance(effect, RecordHistory):
        return f"RecordHistory batches {', '.join(str(record.batch) for record in effect.records)}"
    return repr(effect)


def _body(raw: dict[str, Any]) -> kopf.Body:
    """The object an Event is about, as Kopf's poster takes it."""
    return kopf.Body(cast(kopf.RawBody, raw))


def _post(body: dict[str, Any], events: list[Event]) -> None:
    for event in events:
        (kopf.warn if event.warning else kopf.info)(_body(body), reason=event.reason, message=event.message)


def _report_stop(context: OperatorContext, plan: plans.StoredPlan, reason: str, message: str) -> None:
    """The step could not finish (an effect failed, the status was refused): Progressing says so,
    with a Warning Event when the reason is new, written as conditions only."""
    current = (plan.body.get("status") or {}).get("conditions") or []
    previous: dict[str, Any] = next((c for c in current if c.get("type") == "Progressing"), {})
    now = datetime.datetime.now(datetime.UTC)
    update = ConditionUpdate.of("Progressing", False, reason, message)
    plans.patch_conditions(
        context.custom, plan, merged_conditions(current, [update], plan.identity.generation, now)
    )
    if previous.get("reason") != reason:
        kopf.warn(_body(plan.body), reason=reason, message=message)


def _round(
    context: OperatorContext, observed: Observed, logger: logging.Logger | kopf.Logger, unposted: list[Event]
) -> tuple[str, bool]:
    """One observe-decide-apply-write round; the result label and whether to look again.
    ``unposted`` holds the Events of earlier rounds whose effects were applied but whose status
    lost a race: they are posted with the next round that writes (see unposted_events)."""
    decision: Decision = decide(observed.observation)
    plan = observed.plan
    for effect in decision.effects:  # the operator's log, not Events: those say what a human should notice
        log.info("%s/%s: %s", plan.identity.namespace, plan.identity.name, _summary(effect))
    try:
        apply_effects(context, plan, observed.endpoint, decision.effects)
    except EffectRefused as error:
        _report_stop(context, plan, error.reason, str(error))
        return "effect_refused", False
    except (MilvusUnavailable, SecretUnavailable, SourceUnavailable, SourceMisconfigured) as error:
        _report_stop(context, plan, type(error).__name__, str(error))
        return "milvus_unavailable", False
    written, message = plans.write_status(context.custom, plan, decision.status)
    if written is plans.Written.CONFLICT:
        identity = plan.identity
        log.info("%s/%s: changed since it was read; looking again", identity.namespace, identity.name)
        unposted[:] = carried_over(unposted, decision.events)
        return "conflict", True
    if written is plans.Written.REFUSED:
        logger.error(f"the status of {plan.identity.name} was refused: {message}")
        _report_stop(context, plan, "StatusRefused", f"the API server refused the plan's status: {message}")
        return "status_refused", False
    _post(plan.body, carried_over(unposted, decision.events))
    unposted.clear()
    target = observed.observation.collection_spec
    alias = target.collection_name if target is not None else plan.spec.target_ref.name
    plan_metrics.publish(context.metrics, plan.identity, plan.spec, plan.status, decision, alias)
    return "ok", decision.again


def step_plan(
    context: OperatorContext, namespace: str, name: str, uid: str, logger: logging.Logger | kopf.Logger
) -> None:
    result = "ok"
    unposted: list[Event] = []
    with context.lock_for(uid):
        for _ in range(MAX_ROUNDS):
            try:
                observed = observe(context, namespace, name)
            except plans.UnreadableStatus as error:
                body = plans.read_plan(context.custom, namespace, name)
                if body is not None:
                    kopf.warn(_body(body), reason="StatusUnreadable", message=str(error)[:1024])
                result = "status_unreadable"
                break
            if observed is None:
                break
            result, again = _round(context, observed, logger, unposted)
            if not again:
                break
        body = plans.read_plan(context.custom, namespace, name) if unposted else None
        if body is not None:  # every round lost its race: what was done is still news
            _post(body, unposted)
    context.metrics.reconciles.labels(KIND, result).inc()
