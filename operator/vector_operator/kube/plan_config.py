"""The plan's ConfigMap (owned by the plan, deleted with it): the batch boundaries, stored once when
the plan is made, and the target's spec, pinned when the plan prepares."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client import V1ConfigMap
from kubernetes.client.exceptions import ApiException

from vector_operator.api.resource import GROUP, VERSION
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.migration.batch_jobs import PLAN_LABEL, plan_label_value
from vector_operator.migration.batch_plan import MAX_ENCODED_BYTES, BatchPlan
from vector_operator.migration.observation import PinnedSpec

BATCH_PLAN_KEY = "batches.json.gz.b64"
TARGET_KEY = "target.json"


def plan_owned_config_map(name: str, plan: str, plan_uid: str, data: dict[str, bytes | str]) -> V1ConfigMap:
    """A ConfigMap of the plan's (labelled with it, deleted with it) holding ``data`` as binaryData."""
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MigrationPlan", "name": plan, "uid": plan_uid}
    return V1ConfigMap.model_validate(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "labels": {PLAN_LABEL: plan_label_value(plan)},
                "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
            },
            "binaryData": data,
        }
    )


def read_plan_config_map(core: client.CoreV1Api, namespace: str, name: str) -> V1ConfigMap | None:
    """One of the plan's ConfigMaps; None when it does not exist (yet, or any more)."""
    try:
        return core.read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def binary_text(found: V1ConfigMap | None, key: str) -> str | None:
    """The text stored under binaryData ``key`` (the client gives it as bytes or str)."""
    stored = (found.binary_data or {}).get(key) if found is not None else None
    return stored.decode() if isinstance(stored, bytes) else stored


class BatchPlanTooLarge(Exception):
    """The boundaries do not fit a ConfigMap."""


@dataclass(frozen=True)
class PlanConfig:
    batch_plan: BatchPlan | None
    pinned: PinnedSpec | None


def config_map_name(plan: str) -> str:
    return f"{plan[:240]}-batches"


DECODED_KEPT = 256
"""Decoded ConfigMaps kept (one per plan in flight is what is used)."""
_decoded: OrderedDict[tuple[str, str], PlanConfig] = OrderedDict()
_decoded_lock = threading.Lock()


def read_config(core: client.CoreV1Api, namespace: str, plan: str) -> PlanConfig:
    """The plan's boundaries and pinned target. Decoding 100,000 boundaries costs about 20 ms of
    CPU and every step of the plan reads them: a ConfigMap already decoded at this resourceVersion
    is not decoded again (its content is the same)."""
    found = read_plan_config_map(core, namespace, config_map_name(plan))
    if found is None:
        return PlanConfig(None, None)
    metadata = found.metadata
    key = (metadata.uid or "", metadata.resource_version or "") if metadata is not None else ("", "")
    with _decoded_lock:
        if key[1] and (known := _decoded.get(key)) is not None:
            _decoded.move_to_end(key)
            return known
    decoded = _decode(found)
    if key[1]:
        with _decoded_lock:
            _decoded[key] = decoded
            while len(_decoded) > DECODED_KEPT:
                _decoded.popitem(last=False)
    return decoded


def _decode(found: V1ConfigMap) -> PlanConfig:
    data, stored = found.data or {}, binary_text(found, BATCH_PLAN_KEY)
    batch_plan = BatchPlan.decode(stored) if stored is not None else None
    pinned = None
    if TARGET_KEY in data:
        document = json.loads(data[TARGET_KEY])
        pinned = PinnedSpec(
            int(document["generation"]), VectorCollectionSpec.model_validate(document["spec"])
        )
    return PlanConfig(batch_plan, pinned)


def store_batch_plan(
    core: client.CoreV1Api, namespace: str, plan: str, plan_uid: str, batches: BatchPlan
) -> None:
    encoded = batches.encode()
    if len(encoded) > MAX_ENCODED_BYTES:
        raise BatchPlanTooLarge(
            f"{batches.batches} batch boundaries take {len(encoded)} bytes, more than a ConfigMap holds:"
            " raise batching.recordsPerJob"
        )
    try:
        core.create_namespaced_config_map(
            namespace, plan_owned_config_map(config_map_name(plan), plan, plan_uid, {BATCH_PLAN_KEY: encoded})
        )
    except ApiException as error:
        if error.status != 409:  # stored by an earlier step: the boundaries never change
            raise


def pin_target(
    core: client.CoreV1Api, namespace: str, plan: str, generation: int, spec: VectorCollectionSpec
) -> None:
    document = {
        "generation": generation,
        "spec": spec.model_dump(by_alias=True, mode="json", exclude_none=True),
    }
    core.patch_namespaced_config_map(
        config_map_name(plan), namespace, {"data": {TARGET_KEY: json.dumps(document, sort_keys=True)}}
    )
