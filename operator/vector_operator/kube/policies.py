"""The RollbackPolicies guarding a plan (or a VectorCollection's re-index), and their executions
recorded in the policy's status with optimistic concurrency: two plans firing one policy at once
both end up in its history, once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from vector_operator.api.bounds import MAX_EXECUTIONS
from vector_operator.api.resource import GROUP, VERSION
from vector_operator.api.rollbackpolicy import Execution, RollbackPolicySpec, RollbackPolicyStatus
from vector_operator.collection.reindex_guard import Guard
from vector_operator.kube.custom_objects import read_custom_object
from vector_operator.migration.observation import GuardingPolicy
from vector_operator.rollback.triggers import selects

PLURAL = "rollbackpolicies"
ATTEMPTS = 8
Json = dict[str, Any]


def _policies(custom: client.CustomObjectsApi, namespace: str) -> list[tuple[str, RollbackPolicySpec]]:
    """The namespace's policies by name (one whose spec does not parse is left out)."""
    listed = cast(Json, custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
    found = []
    for item in listed.get("items", []):
        try:
            found.append((str(item["metadata"]["name"]), RollbackPolicySpec.model_validate(item["spec"])))
        except ValidationError:
            continue
    return sorted(found, key=lambda named: named[0])


def guarding_policies(
    custom: client.CustomObjectsApi, namespace: str, plan: str, labels: Mapping[str, str]
) -> tuple[GuardingPolicy, ...]:
    return tuple(
        GuardingPolicy(name, spec)
        for name, spec in _policies(custom, namespace)
        if selects(spec.selector, spec.plan_names, plan, labels)
    )


def guarding_collection(
    custom: client.CustomObjectsApi, namespace: str, collection: str
) -> tuple[Guard, ...]:
    """The policies of the namespace that name the VectorCollection in spec.collectionNames."""
    return tuple(
        Guard(name, spec)
        for name, spec in _policies(custom, namespace)
        if collection in (spec.collection_names or ())
    )


def record_execution(
    custom: client.CustomObjectsApi, namespace: str, policy: str, execution: Execution
) -> None:
    """Appends ``execution`` to the policy's status unless it is there already; a concurrent write
    (409) makes it read again and retry."""
    for _ in range(ATTEMPTS):
        body = read_custom_object(custom, namespace, PLURAL, policy)
        if body is None:
            return  # the policy is gone: the plan's own record stays
        status = RollbackPolicyStatus.model_validate(body.get("status") or {})
        executions = list(status.executions or [])
        if any(
            (e.plan, e.collection, e.executed_at)
            == (execution.plan, execution.collection, execution.executed_at)
            for e in executions
        ):
            return
        status.executions = [*executions, execution][-MAX_EXECUTIONS:]
        status.trigger_count = (status.trigger_count or 0) + 1
        status.last_executed_at = execution.executed_at
        body["status"] = status.model_dump(by_alias=True, mode="json", exclude_none=True)
        try:
            custom.replace_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, policy, body)
            return
        except ApiException as error:
            if error.status != 409:
                raise
    raise RuntimeError(
        f"RollbackPolicy {policy} kept changing: its execution record is retried on the next step"
    )
