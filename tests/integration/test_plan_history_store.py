"""A plan's batch history ConfigMap against the real API server: created owned by the plan on the
first finished batch, appended to on later ones, a repeated step adds nothing, and writers that
race are each applied (a 409 reads again) without a row twice."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from kubernetes import client, config
from tests.plan_manifests import minimal_plan

from localcluster.cluster import Kubectl, RunningCluster
from vector_operator.kube.plan_history import history_name, read_history, record_history
from vector_operator.migration.batch_jobs import PLAN_LABEL
from vector_operator.migration.history import BatchRecord

pytestmark = pytest.mark.cluster

PLAN = minimal_plan("history-probe", target="nowhere")


def record(sequence: int) -> BatchRecord:
    return BatchRecord(
        batch=sequence - 1,
        sequence=sequence,
        finished_at=1_790_000_000.0 + sequence,
        records=100,
        seconds=2.5,
        p95_ms=12.0,
        coherence=0.97,
        coherence_min=0.9,
        coherence_max=0.99,
    )


def test_the_history_is_owned_by_the_plan_and_appended_once(
    cluster: RunningCluster, crds: None, kubectl: Kubectl, namespace: str
) -> None:
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    kubectl("apply", "-f", "-", input=json.dumps(PLAN))
    uid = kubectl("get", "mplan", "history-probe", "-o", "jsonpath={.metadata.uid}").stdout.strip()
    assert read_history(core, namespace, "history-probe") == []  # no batch finished yet

    record_history(core, namespace, "history-probe", uid, [record(2), record(1)])
    assert read_history(core, namespace, "history-probe") == [record(1), record(2)]  # in sequence

    stored: Any = core.read_namespaced_config_map(history_name("history-probe"), namespace)
    (owner,) = stored.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("MigrationPlan", "history-probe", uid)
    assert owner.controller is True
    assert stored.metadata.labels[PLAN_LABEL] == "history-probe"

    record_history(core, namespace, "history-probe", uid, [record(2)])  # a step repeated after a conflict
    record_history(core, namespace, "history-probe", uid, [record(3)])
    assert read_history(core, namespace, "history-probe") == [record(1), record(2), record(3)]

    errors: list[BaseException] = []

    def append(sequence: int) -> None:
        try:
            record_history(core, namespace, "history-probe", uid, [record(sequence)])
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    writers = [threading.Thread(target=append, args=(sequence,)) for sequence in (4, 5, 6)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert errors == []
    sequences = [row.sequence for row in read_history(core, namespace, "history-probe")]
    assert sequences[:3] == [1, 2, 3]
    assert sequences == sorted(set(sequences))  # never a row twice, never out of order
    # the newest is never dropped: a writer that read before another wrote gets a 409 and reads again
    # (an older one that lands after a newer one adds nothing: sequences only grow, one plan step at
    # a time writes in practice)
    assert sequences[-1] == 6
