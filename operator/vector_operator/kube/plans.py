"""A MigrationPlan as the controller reads and writes it: spec and status typed, the status written
whole from the typed model with the resourceVersion it was read at (optimistic concurrency: a
concurrent change, by a human or Kopf, makes the write fail and the step look again). A status
the API server refuses is reported as a condition and a Warning Event, never retried blindly."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from vector_operator.api.migrationplan import Approval, MigrationPhase, MigrationPlanSpec, MigrationPlanStatus
from vector_operator.api.resource import GROUP, VERSION
from vector_operator.kube.custom_objects import read_custom_object
from vector_operator.migration import target_lock
from vector_operator.migration.observation import PlanIdentity, SiblingPlan
from vector_operator.migration.schedule import retry_requested

PLURAL = "migrationplans"
MERGE_PATCH = "application/merge-patch+json"
Json = dict[str, Any]


class UnreadableStatus(Exception):
    """The stored status does not fit the model (written by another version?)."""


@dataclass(frozen=True)
class StoredPlan:
    body: Json
    identity: PlanIdentity
    spec: MigrationPlanSpec
    status: MigrationPlanStatus
    deleting: bool


def _created(metadata: Json) -> datetime.datetime:
    return datetime.datetime.fromisoformat(str(metadata["creationTimestamp"]).replace("Z", "+00:00"))


def parse_plan(body: Json) -> StoredPlan:
    metadata = body["metadata"]
    identity = PlanIdentity(
        namespace=str(metadata["namespace"]),
        name=str(metadata["name"]),
        uid=str(metadata["uid"]),
        generation=metadata.get("generation"),
        created=_created(metadata),
        labels=dict(metadata.get("labels") or {}),
    )
    spec = MigrationPlanSpec.model_validate(body["spec"])
    try:
        status = MigrationPlanStatus.model_validate(body.get("status") or {})
    except ValidationError as error:
        raise UnreadableStatus(f"the stored status does not fit this operator's model: {error}") from None
    return StoredPlan(body, identity, spec, status, bool(metadata.get("deletionTimestamp")))


def read_plan(custom: client.CustomObjectsApi, namespace: str, name: str) -> Json | None:
    return read_custom_object(custom, namespace, PLURAL, name)


def create_plan(custom: client.CustomObjectsApi, namespace: str, manifest: Json) -> None:
    """Creates a MigrationPlan; one of that name that exists already is kept (created by an earlier
    try of the same step)."""
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    except ApiException as error:
        if error.status != 409:
            raise


def _plans(custom: client.CustomObjectsApi, namespace: str) -> Iterator[Json]:
    listed = cast(Json, custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
    yield from listed.get("items", [])


def waiting_for_target(custom: client.CustomObjectsApi, namespace: str, target: str) -> list[tuple[str, str]]:
    """The name and uid of the namespace's plans for VectorCollection ``target`` that have not
    started filling (Pending, Planning, Preparing): what a target becoming Ready lets go on."""
    found = []
    for item in _plans(custom, namespace):
        metadata, phase = item["metadata"], (item.get("status") or {}).get("phase")
        if (item.get("spec") or {}).get("targetRef", {}).get("name") != target or metadata.get(
            "deletionTimestamp"
        ):
            continue
        if phase in (None, MigrationPhase.PENDING, MigrationPhase.PLANNING, MigrationPhase.PREPARING):
            found.append((str(metadata["name"]), str(metadata["uid"])))
    return found


def siblings(custom: client.CustomObjectsApi, plan: StoredPlan) -> list[SiblingPlan]:
    """The other plans of the namespace that fill the same VectorCollection."""
    found = []
    for item in _plans(custom, plan.identity.namespace):
        if item["metadata"]["uid"] == plan.identity.uid or item["metadata"].get("deletionTimestamp"):
            continue
        try:
            other = parse_plan(item)
        except (ValidationError, UnreadableStatus, KeyError):
            continue
        if other.spec.target_ref.name != plan.spec.target_ref.name:
            continue
        found.append(
            SiblingPlan(
                name=other.identity.name,
                created=other.identity.created,
                phase=other.status.phase,
                retrying=retry_requested(other.spec, other.status),
                ready=other.spec.approval is Approval.AUTOMATIC or other.spec.approved,
                throughput=other.status.throughput,
            )
        )
    return found


def active_plans(custom: client.CustomObjectsApi, namespace: str, target: str) -> list[str]:
    """The plans of the namespace that work on VectorCollection ``target`` now (prepare, fill,
    validate or cut over, or are paused in between)."""
    found = []
    for item in _plans(custom, namespace):
        try:
            other = parse_plan(item)
        except (ValidationError, UnreadableStatus, KeyError):
            continue
        if other.spec.target_ref.name == target and other.status.phase in target_lock.ACTIVE:
            found.append(other.identity.name)
    return sorted(found)


class Written(StrEnum):
    WRITTEN = "Written"
    UNCHANGED = "Unchanged"
    CONFLICT = "Conflict"
    REFUSED = "Refused"


def status_document(status: MigrationPlanStatus) -> Json:
    document: Json = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    return document


def write_status(
    custom: client.CustomObjectsApi, plan: StoredPlan, status: MigrationPlanStatus
) -> tuple[Written, str]:
    """Replaces the plan's status with ``status``, if nothing changed the plan since it was read."""
    document = status_document(status)
    if document == status_document(plan.status):
        return Written.UNCHANGED, ""
    try:
        MigrationPlanStatus.model_validate(document)
    except ValidationError as error:
        return Written.REFUSED, f"the operator built a status its own model refuses: {error}"[:2000]
    body = {**plan.body, "status": document}
    try:
        custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, plan.identity.namespace, PLURAL, plan.identity.name, body
        )
    except ApiException as error:
        if error.status in (404, 409):
            return Written.CONFLICT, ""
        if error.status in (400, 422):
            return Written.REFUSED, _api_message(error)
        raise
    return Written.WRITTEN, ""


def patch_conditions(custom: client.CustomObjectsApi, plan: StoredPlan, conditions: list[Json]) -> None:
    """Writes only the conditions (when the whole status cannot be written)."""
    patch = {"status": {"conditions": conditions, "observedGeneration": plan.identity.generation}}
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, plan.identity.namespace, PLURAL, plan.identity.name, patch, _content_type=MERGE_PATCH
    )


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)[:2000]
    except (ValueError, AttributeError):
        return str(error.reason)
