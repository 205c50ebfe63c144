"""The batch/v1 Job of one batch: deterministic name, labels, owner reference, the worker's
assignment, credentials only through `secretKeyRef`, the plan's pod overrides, and a security
context that meets the "restricted" Pod Security Standard."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from vector_operator.api.kubernetes_types import SecretKeyReference
from vector_operator.api.migrationplan import PodTemplateOverrides
from vector_operator.api.resource import API_VERSION
from vector_operator.contract.assignment import CPU_LIMIT_ENV, CPU_REQUEST_ENV

MAX_NAME = 63
PLAN_LABEL = "vectors.aios.dev/plan"
BATCH_LABEL = "vectors.aios.dev/batch"
ROUND_LABEL = "vectors.aios.dev/round"
TASK_LABEL = "vectors.aios.dev/task"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "vector-operator"
ASSIGNMENT_ENV = "VO_ASSIGNMENT"
SOURCE_URL_ENV = "VO_SOURCE_URL"
MILVUS_TOKEN_ENV = "VO_MILVUS_TOKEN"  # noqa: S105 - the name of the variable, not a token
MILVUS_CA_VOLUME = "milvus-ca"
MILVUS_CA_DIR = "/var/run/secrets/vectors.aios.dev/milvus-ca"
MILVUS_CA_FILE = f"{MILVUS_CA_DIR}/ca.crt"
CONTAINER = "worker"
DEFAULT_RESOURCES: dict[str, Any] = {"requests": {"cpu": "1"}}
"""A worker pod's resources when the plan sets none: one CPU, which the worker sizes its threads to
and the scheduler packs pods by, so that Jobs sharing a node do not oversubscribe it."""


def job_name(plan: str, index: int, round_: int = 0) -> str:
    """`<plan>-<index>` (`<plan>-<index>-r<round>` for a retry round); a plan name too long for
    that is cut and made unique with a hash, so the name stays a valid label value (63 characters)
    and never collides."""
    return bounded_name(plan, f"-{index}" if round_ == 0 else f"-{index}-r{round_}")


def bounded_name(plan: str, suffix: str) -> str:
    """``plan + suffix``, the plan's part cut and made unique with a hash when that would pass 63
    characters (a valid label value)."""
    if len(plan) + len(suffix) <= MAX_NAME:
        return plan + suffix
    digest = hashlib.sha256(plan.encode()).hexdigest()[:8]
    keep = MAX_NAME - len(suffix) - len(digest) - 1
    return f"{plan[:keep].rstrip('-.')}-{digest}{suffix}"


def plan_label_value(plan: str) -> str:
    """A label value naming the plan (hashed when longer than 63 characters)."""
    if len(plan) <= MAX_NAME:
        return plan
    return f"{plan[:54].rstrip('-._')}-{hashlib.sha256(plan.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class SecretEnv:
    env: str
    secret: str
    key: str


IMAGE_USER = 10001
"""The worker image's own non-root user (the Dockerfile's USER): its home and files are its own."""


@dataclass(frozen=True)
class ClaimMount:
    """A PersistentVolumeClaim mounted into the worker container."""

    claim: str
    mount_path: str
    read_only: bool = True


@dataclass(frozen=True)
class JobSettings:
    image: str  # the admitted image: the plan's choice when the installation allows it
    command: tuple[str, ...]
    backoff_limit: int
    active_deadline_s: int = 6 * 3600
    ttl_after_finished_s: int = 24 * 3600
    milvus_ca: SecretKeyReference | None = None  # mounted at MILVUS_CA_FILE
    service_account: str | None = None  # admitted against the installation's allow-list before
    claims: tuple[ClaimMount, ...] = ()  # the files' or the backup's volume


def worker_container(
    assignment: dict[str, Any],
    secrets: list[SecretEnv],
    settings: JobSettings,
    assignment_env: str = ASSIGNMENT_ENV,
) -> dict[str, Any]:
    """The worker container: the assignment as JSON in ``assignment_env``, credentials by Secret
    reference, the restricted security context."""
    env: list[dict[str, Any]] = [
        {"name": assignment_env, "value": json.dumps(assignment, separators=(",", ":"))},
        {"name": "HF_HUB_OFFLINE", "value": "1"},
        {"name": "TRANSFORMERS_OFFLINE", "value": "1"},
    ]
    env += [
        {
            "name": name,
            "valueFrom": {
                "resourceFieldRef": {"containerName": CONTAINER, "resource": resource, "divisor": "1m"}
            },
        }
        for name, resource in ((CPU_REQUEST_ENV, "requests.cpu"), (CPU_LIMIT_ENV, "limits.cpu"))
    ]
    env += [{"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}} for s in secrets]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.image,
        "command": list(settings.command),
        "env": env,
        "resources": copy.deepcopy(DEFAULT_RESOURCES),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    mounts = [{"name": MILVUS_CA_VOLUME, "mountPath": MILVUS_CA_DIR, "readOnly": True}]
    mounts = mounts if settings.milvus_ca is not None else []
    mounts += [
        {"name": _claim_volume(number), "mountPath": claim.mount_path, "readOnly": claim.read_only}
        for number, claim in enumerate(settings.claims)
    ]
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _claim_volume(number: int) -> str:
    return f"data-{number}"


def worker_pod_spec(
    container: dict[str, Any],
    settings: JobSettings,
    overrides: PodTemplateOverrides | None,
    restart_policy: str = "Never",
) -> dict[str, Any]:
    """The pod around ``container``: no API token, the image's non-root user, the plan's overrides."""
    pod_spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": IMAGE_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
    }
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account
    volumes: list[dict[str, Any]] = []
    if settings.milvus_ca is not None:
        items = [{"key": settings.milvus_ca.key, "path": "ca.crt"}]
        volumes.append(
            {"name": MILVUS_CA_VOLUME, "secret": {"secretName": settings.milvus_ca.name, "items": items}}
        )
    volumes += [
        {"name": _claim_volume(number), "persistentVolumeClaim": {"claimName": claim.claim}}
        for number, claim in enumerate(settings.claims)
    ]
    if volumes:
        pod_spec["volumes"] = volumes
    if overrides is None:
        return pod_spec
    if overrides.resources is not None:
        container["resources"] = overrides.resources.model_dump(by_alias=True, exclude_none=True)
    if overrides.node_selector:
        pod_spec["nodeSelector"] = dict(overrides.node_selector)
    if overrides.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in overrides.tolerations
        ]
    return pod_spec


def plan_job(
    *,
    name: str,
    plan: str,
    plan_uid: str,
    labels: dict[str, str],
    container: dict[str, Any],
    settings: JobSettings,
    overrides: PodTemplateOverrides | None,
) -> dict[str, Any]:
    """A Job owned by the plan running ``container``."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY, PLAN_LABEL: plan_label_value(plan), **labels}
    owner = {"apiVersion": API_VERSION, "kind": "MigrationPlan", "name": plan, "uid": plan_uid}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": labels,
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "activeDeadlineSeconds": settings.active_deadline_s,
            "ttlSecondsAfterFinished": settings.ttl_after_finished_s,
            "template": {
                "metadata": {"labels": labels},
                "spec": worker_pod_spec(container, settings, overrides),
            },
        },
    }


def batch_job(
    *,
    plan: str,
    plan_uid: str,
    index: int,
    round_: int,
    assignment: dict[str, Any],
    secrets: list[SecretEnv],
    settings: JobSettings,
    overrides: PodTemplateOverrides | None,
) -> dict[str, Any]:
    return plan_job(
        name=job_name(plan, index, round_),
        plan=plan,
        plan_uid=plan_uid,
        labels={BATCH_LABEL: str(index), ROUND_LABEL: str(round_)},
        container=worker_container(assignment, secrets, settings),
        settings=settings,
        overrides=overrides,
    )
