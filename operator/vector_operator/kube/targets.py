"""The VectorCollection a plan fills: read as a typed view, and its status made current when the
plan moves the alias (what it serves, what it served before, its exact entity count); and the
status fields that long-running work (a re-index's copy, a tuning study) writes as it goes."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from vector_operator.api.collection_reindex import ReindexState
from vector_operator.api.conditions import Condition
from vector_operator.api.resource import GROUP, VERSION
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.kube.custom_objects import read_custom_object
from vector_operator.migration.observation import Target

PLURAL = "vectorcollections"
MERGE_PATCH = "application/merge-patch+json"
Json = dict[str, Any]


def read_target(custom: client.CustomObjectsApi, namespace: str, name: str) -> Target | None:
    body = read_custom_object(custom, namespace, PLURAL, name)
    if body is None:
        return None
    conditions = []
    for raw in (body.get("status") or {}).get("conditions") or []:
        try:
            conditions.append(Condition.model_validate(raw))
        except ValidationError:
            continue
    metadata = body["metadata"]
    reindex = (body.get("status") or {}).get("reindex") or {}
    running = reindex.get("state") in (ReindexState.COPYING, ReindexState.VALIDATING)
    return Target(
        namespace=namespace,
        name=name,
        uid=str(metadata["uid"]),
        generation=int(metadata.get("generation") or 0),
        spec=VectorCollectionSpec.model_validate(body["spec"]),
        conditions=tuple(conditions),
        reindexing=f"{reindex.get('target')} ({reindex.get('index')})" if running else None,
    )


def update_target_status(
    custom: client.CustomObjectsApi,
    namespace: str,
    name: str,
    physical: str,
    previous: str | None,
    entities: int,
) -> None:
    status: Json = {"physicalCollection": physical, "entityCount": entities}
    if previous is not None:
        status["previousPhysicalCollection"] = previous
    patch_collection_status(custom, namespace, name, status)


def patch_collection_status(custom: client.CustomObjectsApi, namespace: str, name: str, status: Json) -> None:
    """A merge patch of the VectorCollection's status (None deletes a field); a deleted collection
    is left alone."""
    try:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE_PATCH
        )
    except ApiException as error:
        if error.status != 404:  # the collection is gone: nothing to keep current
            raise
