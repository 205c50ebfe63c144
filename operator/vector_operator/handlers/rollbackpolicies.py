"""Kopf handlers for RollbackPolicy: it is evaluated by the MigrationPlan controller (under each
plan's lock, with the plan's own figures) and by the VectorCollection controller for the
re-indexes it names; here it only reports what it guards."""

from __future__ import annotations

import datetime
from typing import Any, cast

import kopf

from vector_operator.api.resource import GROUP, VERSION
from vector_operator.api.rollbackpolicy import RollbackPolicySpec
from vector_operator.controller.context import OperatorContext
from vector_operator.rollback.triggers import describe, selects
from vector_operator.status_conditions import ConditionUpdate, merged_conditions

PLURAL = "rollbackpolicies"


def report(context: OperatorContext, body: kopf.Body, patch: kopf.Patch) -> None:
    spec = RollbackPolicySpec.model_validate(dict(body.spec))
    listed = cast(
        dict[str, Any],
        context.custom.list_namespaced_custom_object(
            GROUP, VERSION, str(body.metadata.namespace), "migrationplans"
        ),
    )
    guarded = sorted(
        item["metadata"]["name"]
        for item in listed.get("items", [])
        if selects(
            spec.selector, spec.plan_names, item["metadata"]["name"], item["metadata"].get("labels") or {}
        )
    )
    triggers = "; ".join(describe(t) for t in spec.triggers)
    collections = sorted(spec.collection_names or ())
    reindexes = f" and the re-indexes of {', '.join(collections[:10])}" if collections else ""
    plans = f"{len(guarded)} MigrationPlan(s){': ' + ', '.join(guarded[:10]) if guarded else ''}"
    message = (
        f"guards {plans}{reindexes}; fires on {triggers}; then {', '.join(a.value for a in spec.actions)}"
    )
    update = ConditionUpdate.of("Ready", True, "Watching", message)
    generation = body.metadata.get("generation")
    now = datetime.datetime.now(datetime.UTC)

    def apply(fresh: kopf.RawBody) -> None:
        status = fresh.setdefault("status", {})
        status["conditions"] = merged_conditions(status.get("conditions"), [update], generation, now)

    patch.fns.append(apply)
    patch.status["observedGeneration"] = generation
    if dict(body.status or {}).get("triggerCount") is None:
        patch.status["triggerCount"] = 0


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    resource = (GROUP, VERSION, PLURAL)

    def on_change(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        report(context, body, patch)

    kopf.on.create(*resource, registry=registry, id="report")(on_change)
    kopf.on.update(*resource, registry=registry, id="report", field="spec")(on_change)
    kopf.on.resume(*resource, registry=registry, id="report")(on_change)
    kopf.timer(
        *resource, registry=registry, id="refresh", interval=max(context.settings.check_interval_s, 10)
    )(on_change)
