"""The CPUs the nodes offer to worker pods: the allocatable CPUs of the Ready, schedulable nodes
that match the pods' nodeSelector. Taints are not weighed (a tolerated taint is the plan author's
business); CPU already requested by other pods is not subtracted (the scheduler queues the rest)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from vector_operator.api.model import parse_quantity


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def offered_cpus(nodes: list[Mapping[str, Any]], node_selector: Mapping[str, str]) -> float:
    total = 0.0
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if (node.get("spec") or {}).get("unschedulable") or not _ready(node):
            continue
        if any(labels.get(key) != value for key, value in node_selector.items()):
            continue
        try:
            total += float(
                parse_quantity(((node.get("status") or {}).get("allocatable") or {}).get("cpu", 0))
            )
        except ValueError:
            continue
    return total


def schedulable_cpus(core: client.CoreV1Api, node_selector: Mapping[str, str]) -> float | None:
    """None when the nodes cannot be listed (the operator has no right to)."""
    try:
        response = core.list_node(_preload_content=False)
    except ApiException as error:
        if error.status in (401, 403):
            return None
        raise
    items: list[Mapping[str, Any]] = json.loads(cast(Any, response).data).get("items") or []
    return offered_cpus(items, node_selector)
