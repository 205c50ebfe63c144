"""A MigrationPlan's typed status against the real API server: written whole from the model with
the resourceVersion it was read at; a similarity below zero is a valid figure; nothing is written
when nothing changed; a write over a newer object is a conflict, never a silent overwrite; a status
that cannot be written is reported in the conditions instead."""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

import pytest
from kubernetes import client, config
from tests.plan_manifests import minimal_plan

from localcluster.cluster import Kubectl, RunningCluster
from vector_operator.api.migrationplan import MigrationPlanStatus
from vector_operator.api.rollbackpolicy import Execution
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.kube import plan_config, plans, policies
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.status_conditions import ConditionUpdate, merged_conditions

pytestmark = pytest.mark.cluster

PLAN = minimal_plan("status-probe", target="nowhere")


def stored(custom: Any, namespace: str) -> plans.StoredPlan:
    body = plans.read_plan(custom, namespace, "status-probe")
    assert body is not None
    return plans.parse_plan(body)


def test_the_typed_status_is_written_with_optimistic_concurrency(
    cluster: RunningCluster, crds: None, kubectl: Kubectl, namespace: str
) -> None:
    custom = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    kubectl("apply", "-f", "-", input=json.dumps(PLAN))
    first = stored(custom, namespace)

    swapped = MigrationPlanStatus.model_validate(
        {"phase": "Generating", "quality": {"coherence": {"min": -0.41, "mean": -0.2, "max": 0.3}}}
    )
    assert plans.write_status(custom, first, swapped) == (plans.Written.WRITTEN, "")
    written = stored(custom, namespace)
    assert written.status.quality is not None
    assert written.status.quality.coherence is not None
    assert written.status.quality.coherence.min == -0.41  # a cosine below zero is a valid figure

    version = written.body["metadata"]["resourceVersion"]
    assert plans.write_status(custom, written, swapped)[0] is plans.Written.UNCHANGED
    assert stored(custom, namespace).body["metadata"]["resourceVersion"] == version  # nothing sent

    stale = plans.write_status(custom, first, MigrationPlanStatus.model_validate({"phase": "Failed"}))
    assert stale[0] is plans.Written.CONFLICT  # read before the last write: it must look again
    assert stored(custom, namespace).status.phase == written.status.phase

    broken = written.status.model_copy(update={"completed_ranges": "0-3;drop table"})
    outcome, message = plans.write_status(custom, written, broken)
    assert outcome is plans.Written.REFUSED
    assert "completedRanges" in message
    assert stored(custom, namespace).body["metadata"]["resourceVersion"] == version

    update = ConditionUpdate.of("Progressing", False, "StatusRefused", f"the status was refused: {message}")
    now = datetime.datetime.now(datetime.UTC)
    plans.patch_conditions(
        custom, written, merged_conditions(None, [update], written.identity.generation, now)
    )
    reported = stored(custom, namespace).status
    assert reported.conditions is not None
    (progressing,) = reported.conditions
    assert (progressing.reason, progressing.status.value) == ("StatusRefused", "False")
    assert reported.phase == written.status.phase  # the rest of the status is untouched


def test_policy_executions_from_plans_firing_at_once_are_all_recorded_once(
    cluster: RunningCluster, crds: None, kubectl: Kubectl, namespace: str
) -> None:
    custom = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    policy = {
        "apiVersion": "vectors.aios.dev/v1alpha1",
        "kind": "RollbackPolicy",
        "metadata": {"name": "shared-guard"},
        "spec": {"selector": {}, "triggers": [{"metric": "coherence", "below": 0.85}], "actions": ["Abort"]},
    }
    kubectl("apply", "-f", "-", input=json.dumps(policy))
    moment = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)

    def execution(plan: str) -> Execution:
        return Execution.model_validate(
            {
                "plan": plan,
                "phase": "Generating",
                "trigger": "coherence below 0.85",
                "metric": "coherence",
                "threshold": 0.85,
                "observedValue": 0.7,
                "steps": [{"action": "Abort", "result": "Succeeded"}],
                "executedAt": moment.isoformat(),
            }
        )

    plans_firing = [f"plan-{index}" for index in range(6)]
    start = threading.Barrier(len(plans_firing))

    def fire(plan: str) -> None:
        start.wait()
        policies.record_execution(custom, namespace, "shared-guard", execution(plan))

    threads = [threading.Thread(target=fire, args=(plan,)) for plan in plans_firing]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    policies.record_execution(custom, namespace, "shared-guard", execution("plan-0"))  # a repeat: no-op
    recorded = json.loads(kubectl("get", "rollbackpolicy", "shared-guard", "-o", "json").stdout)["status"]
    assert sorted(e["plan"] for e in recorded["executions"]) == plans_firing  # none lost, none twice
    assert recorded["triggerCount"] == len(plans_firing)


def test_the_batches_configmap_is_decoded_once_per_version(
    cluster: RunningCluster, crds: None, kubectl: Kubectl, namespace: str
) -> None:
    """Every step of a plan reads its boundaries: 100,000 of them take about 20 ms to decode, so a
    ConfigMap already decoded at its resourceVersion is not decoded again, and a change (the target
    pinned) is read anew."""
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = client.CoreV1Api(api)
    kubectl("apply", "-f", "-", input=json.dumps(PLAN))
    plan = stored(client.CustomObjectsApi(api), namespace)
    batches = BatchPlan.of_records(1_000_000, 10)
    plan_config.store_batch_plan(core, namespace, "status-probe", plan.identity.uid, batches)

    first = plan_config.read_config(core, namespace, "status-probe")
    assert first.batch_plan == batches
    assert first.pinned is None
    assert plan_config.read_config(core, namespace, "status-probe") is first  # not decoded again

    spec = VectorCollectionSpec.model_validate(
        {"collectionName": "probe", "dimension": 8, "embedding": {"model": "m"}}
    )
    plan_config.pin_target(core, namespace, "status-probe", 3, spec)
    pinned = plan_config.read_config(core, namespace, "status-probe")
    assert pinned is not first
    assert pinned.pinned is not None
    assert pinned.pinned.generation == 3
    assert pinned.batch_plan == batches
