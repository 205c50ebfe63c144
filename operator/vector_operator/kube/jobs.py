"""The plan's Jobs (its batches, and its one-off tasks: backup, inventory): observed with their
pods (state, the worker's result from the last pod's termination message, the scheduler's word on
a pod that cannot be placed), created (an existing Job of that name is adopted: it is ours by name
and owner), deleted with their pods."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast

from kubernetes import client
from kubernetes.client import V1DeleteOptions, V1Job
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from vector_operator.contract.result import WorkerResult
from vector_operator.contract.tasks import TaskKind, TaskResult
from vector_operator.migration.batch_jobs import (
    BATCH_LABEL,
    PLAN_LABEL,
    ROUND_LABEL,
    TASK_LABEL,
    plan_label_value,
)
from vector_operator.migration.observation import BatchJob, JobState, TaskJob

Result = TypeVar("Result", WorkerResult, TaskResult)

UNSCHEDULABLE_AFTER_S = 30.0
Json = dict[str, Any]


def raw_body(response: object) -> Json:
    """The JSON body of a response read with ``_preload_content=False`` (no model conversion)."""
    body: Json = json.loads(cast(Any, response).data)
    return body


def _parse_time(text: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def job_state(job: Mapping[str, Any]) -> JobState:
    """Complete or Failed once the Job controller decided, else Running."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return JobState(condition["type"])
    return JobState.RUNNING


def termination_result(pods: Iterable[Json]) -> WorkerResult | None:
    """The worker result of the Job's last finished pod."""
    return _last_result(pods, WorkerResult)


def _last_result(pods: Iterable[Json], model: type[Result]) -> Result | None:
    """The result document of the Job's last finished pod that holds one."""
    finished = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated:
                finished.append((terminated.get("finishedAt") or "", terminated.get("message") or ""))
    for _, message in sorted(finished, reverse=True):
        try:
            return model.model_validate_json(message)
        except ValidationError:
            continue
    return None


def unschedulable_message(pods: Iterable[Json], now: datetime.datetime) -> str | None:
    """The scheduler's message for a pod that has waited unschedulable for a while."""
    for pod in pods:
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                since = _parse_time(condition.get("lastTransitionTime"))
                if since is not None and (now - since).total_seconds() >= UNSCHEDULABLE_AFTER_S:
                    return (
                        f"pod {pod['metadata']['name']} cannot be scheduled: {condition.get('message', '')}"
                    )
    return None


def observe_jobs(
    batch: client.BatchV1Api,
    core: client.CoreV1Api,
    namespace: str,
    plan: str,
    plan_uid: str,
    now: datetime.datetime,
) -> tuple[BatchJob, ...]:
    observed = []
    for job, job_pods in _plan_jobs(
        batch, core, namespace, f"{PLAN_LABEL}={plan_label_value(plan)},!{TASK_LABEL}", plan_uid
    ):
        labels, name = job["metadata"].get("labels") or {}, job["metadata"]["name"]
        state = job_state(job)
        observed.append(
            BatchJob(
                name=name,
                index=int(labels[BATCH_LABEL]),
                round=int(labels.get(ROUND_LABEL, "0")),
                state=state,
                result=termination_result(job_pods) if state is not JobState.RUNNING else None,
                unschedulable=unschedulable_message(job_pods, now) if state is JobState.RUNNING else None,
            )
        )
    return tuple(observed)


def _plan_jobs(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str, selector: str, plan_uid: str
) -> Iterator[tuple[Json, list[Json]]]:
    """The plan's Jobs matching ``selector`` (owned by ``plan_uid``), each with its pods."""
    jobs = raw_body(batch.list_namespaced_job(namespace, label_selector=selector, _preload_content=False))
    pods = raw_body(core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False))
    by_job: dict[str, list[Json]] = {}
    for pod in pods["items"]:
        if owner := (pod["metadata"].get("labels") or {}).get("job-name"):
            by_job.setdefault(owner, []).append(pod)
    for job in jobs["items"]:
        metadata = job["metadata"]
        if any(ref.get("uid") == plan_uid for ref in metadata.get("ownerReferences") or []):
            yield job, by_job.get(metadata["name"], [])


def observe_tasks(
    batch: client.BatchV1Api,
    core: client.CoreV1Api,
    namespace: str,
    plan: str,
    plan_uid: str,
    now: datetime.datetime,
) -> dict[TaskKind, TaskJob]:
    """The plan's task Jobs (backup, inventory), each with the result its last pod wrote."""
    observed: dict[TaskKind, TaskJob] = {}
    selector = f"{PLAN_LABEL}={plan_label_value(plan)},{TASK_LABEL}"
    for job, job_pods in _plan_jobs(batch, core, namespace, selector, plan_uid):
        label = (job["metadata"].get("labels") or {}).get(TASK_LABEL, "")
        kind = next((kind for kind in TaskKind if kind.value.lower() == label), None)
        if kind is None:
            continue
        state = job_state(job)
        observed[kind] = TaskJob(
            kind=kind,
            name=job["metadata"]["name"],
            state=state,
            result=_last_result(job_pods, TaskResult) if state is not JobState.RUNNING else None,
            unschedulable=unschedulable_message(job_pods, now) if state is JobState.RUNNING else None,
        )
    return observed


def create_job(batch: client.BatchV1Api, namespace: str, manifest: Json) -> None:
    try:
        batch.create_namespaced_job(namespace, V1Job.model_validate(manifest))
    except ApiException as error:
        if error.status != 409:
            raise


def delete_jobs(batch: client.BatchV1Api, namespace: str, names: Iterable[str]) -> None:
    for name in names:
        try:
            batch.delete_namespaced_job(
                name, namespace, body=V1DeleteOptions(propagation_policy="Background")
            )
        except ApiException as error:
            if error.status != 404:
                raise
