"""The plan's sync worker Deployment: observed (does it exist, with how many replicas, is its pod
available, and if not what its pod is waiting on), created once and scaled, deleted. Its pod is
deleted with it (foreground propagation), so a stopped sync has no process left."""

from __future__ import annotations

import datetime
from typing import Any

from kubernetes import client
from kubernetes.client import V1DeleteOptions, V1Deployment
from kubernetes.client.exceptions import ApiException

from vector_operator.kube.jobs import raw_body
from vector_operator.migration.batch_jobs import PLAN_LABEL
from vector_operator.migration.observation import SyncView
from vector_operator.migration.sync_worker import COMPONENT, COMPONENT_LABEL, TEMPLATE_HASH_ANNOTATION

Json = dict[str, Any]


STARTING = ("ContainerCreating", "PodInitializing")
"""Waiting reasons of a pod that is on its way up, not failing."""


def _pod_message(core: client.CoreV1Api, namespace: str, labels: Json) -> tuple[str | None, bool]:
    """What the worker's pod waits on (CrashLoopBackOff: its last exit; an image it cannot pull),
    and whether that is a failure rather than a start."""
    selector = ",".join(f"{key}={value}" for key, value in labels.items())
    pods = raw_body(core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False))
    for pod in pods.get("items") or []:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            last = (container.get("lastState") or {}).get("terminated") or {}
            if waiting.get("reason"):
                exit_code = f" (last exit code {last['exitCode']})" if "exitCode" in last else ""
                message = f"{waiting['reason']}{exit_code}: {waiting.get('message') or ''}".strip(": ")[:512]
                return message, waiting["reason"] not in STARTING
        if (pod.get("status") or {}).get("phase") == "Pending":
            return "its pod is Pending (not scheduled or not started yet)", False
    return None, False


def observe(apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, name: str) -> SyncView:
    try:
        deployment = raw_body(apps.read_namespaced_deployment(name, namespace, _preload_content=False))
    except ApiException as error:
        if error.status == 404:
            return SyncView(state=None)
        raise
    replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
    annotations = deployment["metadata"].get("annotations") or {}
    available = int((deployment.get("status") or {}).get("availableReplicas") or 0) >= max(replicas, 1)
    message, failing = None, False
    if replicas and not available:
        labels = {PLAN_LABEL: deployment["metadata"]["labels"][PLAN_LABEL], COMPONENT_LABEL: COMPONENT}
        message, failing = _pod_message(core, namespace, labels)
    created = deployment["metadata"].get("creationTimestamp")
    return SyncView(
        state=None,
        worker_exists=True,
        worker_replicas=replicas,
        worker_template_hash=annotations.get(TEMPLATE_HASH_ANNOTATION),
        worker_available=available,
        worker_message=message,
        worker_failing=failing,
        worker_since=datetime.datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
    )


def run(apps: client.AppsV1Api, namespace: str, manifest: Json, replicas: int) -> None:
    """Creates the Deployment if missing (an existing one of that name is ours by name and owner);
    else gives it the manifest's pod template (a changed one rolls the worker: Recreate) and sets
    its replicas."""
    try:
        apps.create_namespaced_deployment(namespace, V1Deployment.model_validate(manifest))
        return
    except ApiException as error:
        if error.status != 409:
            raise
    name = manifest["metadata"]["name"]
    patch = {
        "metadata": {"annotations": manifest["metadata"]["annotations"]},
        "spec": {"replicas": replicas, "template": manifest["spec"]["template"]},
    }
    apps.patch_namespaced_deployment(name, namespace, patch)


def stop(apps: client.AppsV1Api, namespace: str, name: str) -> None:
    try:
        apps.delete_namespaced_deployment(
            name, namespace, body=V1DeleteOptions(propagation_policy="Foreground")
        )
    except ApiException as error:
        if error.status != 404:
            raise
