"""A pod's status as the kubelet reports it: phase, conditions, the container's state.

`pod_status_body` is pure (the status the node writes); `patch_pod_status` writes it with the
node's credentials through the pod's status subresource.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import Any, cast

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

Json = dict[str, Any]
log = logging.getLogger("node-agent")

HOST_IP = "127.0.0.1"
STATUS_RETRY_S = 300.0
"""How long a status write is retried while the API server is away (restarting)."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def timestamp(moment: datetime.datetime | None = None) -> str:
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def raw_json(response: object) -> Json:
    """The JSON body of a call made with `_preload_content=False` (the object as served)."""
    body: Json = json.loads(cast(Any, response).data)
    return body


def pod_status_body(
    pod: Json,
    container: Json,
    phase: str,
    *,
    start_time: datetime.datetime,
    reason: str | None = None,
    message: str | None = None,
    waiting: str | None = None,
    running: str | None = None,
    terminated: Json | None = None,
    last_terminated: Json | None = None,
    restarts: int = 0,
    image: str | None = None,
    image_id: str = "",
) -> Json:
    """The pod's `status` for this moment of its container's life."""
    if terminated is not None:
        state: Json = {"terminated": terminated}
    elif running is not None:
        state = {"running": {"startedAt": running}}
    else:
        state = {
            "waiting": {
                "reason": waiting or "ContainerCreating",
                **({"message": message} if message else {}),
            }
        }
    container_status: Json = {
        "name": container.get("name", "main"),
        "image": image if image is not None else container.get("image", ""),
        "imageID": image_id,
        "ready": running is not None,
        "started": running is not None,
        "restartCount": restarts,
        "state": state,
    }
    if last_terminated is not None:
        container_status["lastState"] = {"terminated": last_terminated}
    ready = "True" if running is not None else "False"
    conditions = {c["type"]: c for c in pod.get("status", {}).get("conditions") or []}
    for kind, status in (
        ("PodReadyToStartContainers", "True"),
        ("Initialized", "True"),
        ("ContainersReady", ready),
        ("Ready", ready),
    ):
        previous = conditions.get(kind)
        if previous is None or previous.get("status") != status:
            conditions[kind] = {"type": kind, "status": status, "lastTransitionTime": timestamp()}
    status_body: Json = {
        "phase": phase,
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": HOST_IP,
        "podIPs": [{"ip": HOST_IP}],
        "startTime": timestamp(start_time),
        "conditions": list(conditions.values()),
        "containerStatuses": [container_status],
    }
    if reason:
        status_body["reason"] = reason
    if message and phase in ("Failed", "Succeeded"):
        status_body["message"] = message
    return status_body


class PodGone(Exception):
    """The pod object no longer exists: nothing to report to."""


def patch_pod_status(
    core: client.CoreV1Api, pod: Json, status_body: Json, retry_s: float = STATUS_RETRY_S
) -> Json:
    """Writes the status; returns the pod as served after it (the same pod when the write failed
    for a reason worth only a warning). Raises PodGone on 404. While the API server cannot be
    reached or answers 429/5xx (a restart), the write is tried again every second for up to
    ``retry_s``, as a kubelet does: a pod that finished then must not stay Running."""
    metadata = pod["metadata"]
    deadline = time.monotonic() + retry_s
    while True:
        try:
            answer = core.patch_namespaced_pod_status(
                metadata["name"], metadata["namespace"], {"status": status_body}, _preload_content=False
            )
            return raw_json(answer)
        except ApiException as error:
            if error.status == 404:
                raise PodGone from error
            transient = error.status == 429 or (error.status or 0) >= 500
            if not transient or time.monotonic() > deadline:
                log.warning(
                    "pod %s/%s: status update failed: %s",
                    metadata["namespace"],
                    metadata["name"],
                    error.reason,
                )
                return pod
        except (OSError, urllib3.exceptions.HTTPError) as error:
            if time.monotonic() > deadline:
                raise
            log.warning(
                "pod %s/%s: status update failed (will retry): %s",
                metadata["namespace"],
                metadata["name"],
                error,
            )
        time.sleep(1)
