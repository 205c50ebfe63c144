"""The plan's batch history ConfigMap (owned by the plan): read, appended to with optimistic
concurrency, written back."""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client
from kubernetes.client import V1ConfigMap
from kubernetes.client.exceptions import ApiException

from vector_operator.kube.plan_config import binary_text, plan_owned_config_map, read_plan_config_map
from vector_operator.migration.history import BatchRecord, appended, decode, encode

HISTORY_KEY = "batches.csv.gz.b64"
ATTEMPTS = 5


def history_name(plan: str) -> str:
    return f"{plan[:240]}-history"


def read_history(core: client.CoreV1Api, namespace: str, plan: str) -> list[BatchRecord]:
    return _rows(read_plan_config_map(core, namespace, history_name(plan)))


def _rows(found: V1ConfigMap | None) -> list[BatchRecord]:
    stored = binary_text(found, HISTORY_KEY)
    return decode(stored) if stored else []


def record_history(
    core: client.CoreV1Api, namespace: str, plan: str, plan_uid: str, records: Sequence[BatchRecord]
) -> None:
    for _ in range(ATTEMPTS):
        found = read_plan_config_map(core, namespace, history_name(plan))
        data: dict[str, bytes | str] = {HISTORY_KEY: encode(appended(_rows(found), records))}
        try:
            if found is None:
                core.create_namespaced_config_map(
                    namespace, plan_owned_config_map(history_name(plan), plan, plan_uid, data)
                )
            else:
                found.binary_data = data  # replaced with the resourceVersion it was read at
                core.replace_namespaced_config_map(history_name(plan), namespace, found)
            return
        except ApiException as error:
            if error.status != 409:
                raise
    raise RuntimeError(f"the history of {plan} kept changing: appended on the next step")
