"""Kopf handlers for VectorCollection: thin translation between the Kubernetes object and the
decisions in :mod:`vector_operator.collection.reconciliation`.

One reconcile serves create, update, resume and the periodic check (self-healing, entity count,
canary probe). Status is written through Kopf's patch: plain fields as a merge patch, the
conditions list as a function applied to the freshest object (a JSON patch), so
`lastTransitionTime` moves only on a flip.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from vector_operator.api.resource import GROUP, VERSION
from vector_operator.api.vectorcollection import DeletionPolicy, VectorCollectionSpec
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.collection.reconciliation import assess, plan_reconciliation, serving_layout
from vector_operator.handlers.context import OperatorContext
from vector_operator.kubernetes_secrets import SecretReader, SecretUnavailable
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusEndpoint, MilvusUnavailable
from vector_operator.milvus.endpoints import MilvusNotConfigured, endpoint_for
from vector_operator.status_conditions import ConditionUpdate, merged_conditions, timestamp

PLURAL = "vectorcollections"
KIND = "VectorCollection"
MILVUS_RETRY_S = 10.0
DELETE_ATTEMPTS = 6

_INDEX_STATES = {"Finished": "Finished", "InProgress": "InProgress", "Failed": "Failed"}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_conditions(
    patch: kopf.Patch, updates: list[ConditionUpdate], generation: int | None, now: datetime.datetime
) -> None:
    def apply(body: kopf.RawBody) -> None:
        status = body.setdefault("status", {})
        status["conditions"] = merged_conditions(status.get("conditions"), updates, generation, now)

    patch.fns.append(apply)


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return {}


def reconcile_collection(
    context: OperatorContext,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: logging.Logger | kopf.Logger,
    probe: bool,
) -> str:
    """Brings Milvus to the spec and writes status; returns the result label for metrics."""
    meta, status = body.metadata, dict(body.status or {})
    uid = str(meta.uid)
    with context.lock_for(uid):
        result = _reconcile(context, body, status, patch, logger, probe)
    context.metrics.reconciles.labels(KIND, result).inc()
    return result


def _reconcile(
    context: OperatorContext,
    body: kopf.Body,
    status: dict[str, Any],
    patch: kopf.Patch,
    logger: logging.Logger | kopf.Logger,
    probe: bool,
) -> str:
    meta = body.metadata
    namespace, name, generation = str(meta.namespace), str(meta.name), meta.get("generation")
    now = _now()
    spec = VectorCollectionSpec.model_validate(dict(body.spec))
    layout = layout_of(spec)
    alias = spec.collection_name
    provisioned_before = bool(status.get("physicalCollection"))

    def not_ready(reason: str, message: str) -> None:
        previous = _condition(status, "Ready")
        if previous.get("reason") != reason or previous.get("status") != "False":
            kopf.warn(body, reason=reason, message=message)
        _write_conditions(patch, [ConditionUpdate.of("Ready", False, reason, message)], generation, now)
        patch.status["phase"] = "Degraded" if provisioned_before else "Pending"
        patch.status["observedGeneration"] = generation
        context.metrics.collection_phase(str(meta.uid), patch.status["phase"])

    try:
        endpoint = endpoint_for(
            spec.milvus, context.settings.default_milvus_uri, SecretReader(context.core, namespace)
        )
        context.remember_endpoint(str(meta.uid), endpoint)
    except MilvusNotConfigured as error:
        not_ready("MilvusNotConfigured", str(error))
        return "config_error"
    except SecretUnavailable as error:
        not_ready("SecretUnavailable", str(error))
        return "config_error"

    milvus = MilvusCollections(context.clients, endpoint, context.metrics.observe_milvus_call)
    try:
        observed = milvus.observe(alias)
        plan = plan_reconciliation(layout, alias, status.get("physicalCollection"), observed)
        for step in plan.steps:
            logger.info(f"{alias}: {step}")
            milvus.apply(step, alias, layout)
        if plan.steps:
            observed = milvus.observe(alias)
        physical = observed.physicals.get(plan.physical)
        entities = milvus.count(plan.physical) if physical is not None and physical.loaded else None
        # A collection recreated empty stays Degraded until something refills it.
        was_lost = _condition(status, "Degraded").get("reason") == "PhysicalCollectionLost"
        if was_lost and entities == 0 and status.get("physicalCollection") == plan.physical:
            plan.lost = True
        assessment = assess(layout, plan.physical, observed, plan)
        latency = None
        serving = any(u.type == "Ready" and u.status == "True" for u in assessment.conditions)
        if probe and serving and physical is not None:
            latency = milvus.probe_search_latency(alias, serving_layout(layout, physical))
    except MilvusUnavailable as error:
        not_ready("MilvusUnavailable", str(error))
        logger.warning(str(error))
        return "milvus_unavailable"

    for notice in plan.notices:
        (kopf.warn if notice.warning else kopf.info)(body, reason=notice.reason, message=notice.message)
    for update in assessment.conditions:
        previous = _condition(status, update.type)
        if update.type in ("UpToDate", "Degraded", "Ready") and previous.get("reason") != update.reason:
            if (update.type, update.status) in (("UpToDate", "False"), ("Degraded", "True")):
                kopf.warn(body, reason=update.reason, message=update.message)
            elif (update.type, update.status) == ("Ready", "True"):
                kopf.info(body, reason="Ready", message=f"alias {alias} serves {plan.physical}")
            elif update.reason == "AliasInUse":
                kopf.warn(body, reason=update.reason, message=update.message)

    _write_conditions(patch, assessment.conditions, generation, now)
    patch.status["phase"] = assessment.phase
    patch.status["observedGeneration"] = generation
    if plan.conflict is None:
        patch.status["physicalCollection"] = plan.physical
    if physical is not None and physical.index is not None:
        patch.status["index"] = {
            "state": _INDEX_STATES.get(physical.index.state, "Pending"),
            "indexedRows": physical.index.indexed_rows,
            "pendingRows": physical.index.pending_rows,
            "message": physical.index.failure or None,
        }
    if entities is not None:
        patch.status["entityCount"] = entities
        context.metrics.entities.labels(namespace, name, plan.physical).set(entities)
    if latency is not None:
        p50, p95 = latency
        patch.status["quality"] = {
            "searchLatencyP50Ms": round(p50, 3),
            "searchLatencyP95Ms": round(p95, 3),
            "lastProbeTime": timestamp(now),
        }
        context.metrics.search_latency.labels(namespace, name, "0.5").set(p50)
        context.metrics.search_latency.labels(namespace, name, "0.95").set(p95)
    context.metrics.collection_phase(str(meta.uid), assessment.phase)
    return "ok"


def _probe_due(status: Mapping[str, Any], interval_s: float) -> bool:
    last = (status.get("quality") or {}).get("lastProbeTime")
    if not last:
        return True
    try:
        moment = datetime.datetime.fromisoformat(str(last).replace("Z", "+00:00"))
    except ValueError:
        return True
    return (_now() - moment).total_seconds() >= interval_s


def delete_collection(
    context: OperatorContext, body: kopf.Body, retry: int, logger: logging.Logger | kopf.Logger
) -> None:
    """The finalizer: Retain keeps Milvus as it is; Delete drops the alias and every physical
    collection. When the Secret is gone (a namespace deletion removes it alongside), the
    credentials this operator last read from it are used. A Milvus or Secret that stays
    unavailable does not keep the object forever: after a few tries (at once when its namespace is
    terminating and nothing could recreate the Secret) it is released with a warning."""
    meta = body.metadata
    uid, namespace = str(meta.uid), str(meta.namespace)
    spec = VectorCollectionSpec.model_validate(dict(body.spec))
    alias = spec.collection_name
    context.metrics.forget_collection(uid, namespace, str(meta.name))
    if spec.deletion_policy == DeletionPolicy.RETAIN:
        context.forget(uid)
        kopf.info(
            body,
            reason="Retained",
            message=f"deletionPolicy Retain: alias {alias} and its collections stay in Milvus",
        )
        return
    try:
        endpoint = _deletion_endpoint(context, spec, uid, namespace, logger)
        dropped = MilvusCollections(context.clients, endpoint, context.metrics.observe_milvus_call).drop_all(
            alias
        )
    except (MilvusUnavailable, SecretUnavailable, MilvusNotConfigured) as error:
        if isinstance(error, SecretUnavailable) and _namespace_terminating(context.core, namespace):
            why = f"namespace {namespace} is being deleted, so its Secret cannot come back"
        elif retry + 1 < DELETE_ATTEMPTS:
            raise kopf.TemporaryError(f"cannot drop {alias} yet: {error}", delay=MILVUS_RETRY_S) from None
        else:
            why = f"after {DELETE_ATTEMPTS} tries"
        context.forget(uid)
        message = f"gave up dropping {alias} ({why}), leaving it in Milvus: {error}"
        logger.warning(message)
        kopf.warn(body, reason="DeletionIncomplete", message=message)
        return
    context.forget(uid)
    message = f"deletionPolicy Delete: dropped alias {alias} and {', '.join(dropped) or 'no collections'}"
    logger.info(message)
    kopf.info(body, reason="Deleted", message=message)


def _deletion_endpoint(
    context: OperatorContext,
    spec: VectorCollectionSpec,
    uid: str,
    namespace: str,
    logger: logging.Logger | kopf.Logger,
) -> MilvusEndpoint:
    try:
        return endpoint_for(
            spec.milvus, context.settings.default_milvus_uri, SecretReader(context.core, namespace)
        )
    except SecretUnavailable as error:
        remembered = context.remembered_endpoint(uid)
        if remembered is None:
            raise
        logger.info(
            f"dropping {spec.collection_name} with the credentials this operator last read, as the"
            f" Secret is unavailable now: {error}"
        )
        return remembered


def _namespace_terminating(core: client.CoreV1Api, namespace: str) -> bool:
    """Whether the namespace is gone or going. Unknown (e.g. no RBAC to read namespaces): False."""
    try:
        found = core.read_namespace(namespace)
    except ApiException as error:
        return bool(error.status == 404)
    except Exception:  # the API server unreachable: decide nothing, the retries go on
        return False
    return bool(found.metadata and found.metadata.deletion_timestamp) or bool(
        found.status and found.status.phase == "Terminating"
    )


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    """Registers the VectorCollection handlers with the operator's settings."""
    resource = (GROUP, VERSION, PLURAL)

    def on_change(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
        result = reconcile_collection(context, body, patch, logger, probe=False)
        if result == "milvus_unavailable":
            # Retry soon; the periodic check repairs it too, should this give up.
            raise kopf.TemporaryError("Milvus unavailable", delay=MILVUS_RETRY_S)

    def on_timer(
        body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, status: kopf.Status, **_: Any
    ) -> None:
        reconcile_collection(
            context, body, patch, logger, probe=_probe_due(status, context.settings.probe_interval_s)
        )

    def on_delete(body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any) -> None:
        delete_collection(context, body, retry, logger)

    kopf.on.create(*resource, registry=registry, id="reconcile")(on_change)
    kopf.on.update(*resource, registry=registry, id="reconcile", field="spec")(on_change)
    kopf.on.resume(*resource, registry=registry, id="reconcile")(on_change)
    kopf.timer(
        *resource,
        registry=registry,
        id="check",
        interval=context.settings.check_interval_s,
        initial_delay=context.settings.check_interval_s,
    )(on_timer)
    kopf.on.delete(*resource, registry=registry, id="cleanup", retries=DELETE_ATTEMPTS)(on_delete)
