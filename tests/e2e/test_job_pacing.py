"""A plan's Jobs drive it: its target becoming Ready and a finished Job step the plan at once (the
operator here ticks once an hour, so nothing else could), each Job starts at the micro-batch size
the earlier ones settled on, reports its start-up, and runs as many threads as its pod requested
CPUs; the next plan on the same collection sizes its Jobs (auto) by the pace those Jobs measured and
by the node's CPUs."""

from __future__ import annotations

import json
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from tests.conftest import OperatorProcess, start_operator
from tests.e2e.migration_support import ROWS, apply, eventually, phase_is, quickstart
from tests.polling import unique

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.host_worker import host_worker_args
from localcluster.milvus_lite import MilvusLiteServer

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]


class JobRecorder:
    """The last state of every Job and pod of the namespace's plans, from watches: a plan deletes its
    Jobs once validated, and a watch's DELETED event still carries the object as it was."""

    def __init__(self, cluster: RunningCluster, namespace: str) -> None:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self._lists = {
            "jobs": partial(client.BatchV1Api(api).list_namespaced_job, namespace),
            "pods": partial(client.CoreV1Api(api).list_namespaced_pod, namespace),
        }
        self.seen: dict[str, dict[str, dict[str, Any]]] = {"jobs": {}, "pods": {}}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._follow, args=(kind,), daemon=True) for kind in self._lists
        ]

    def _follow(self, kind: str) -> None:
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                self._lists[kind],
                label_selector="vectors.aios.dev/plan",
                timeout_seconds=2,
                _preload_content=False,
            )
            for event in stream:
                item = event["raw_object"]
                self.seen[kind][item["metadata"]["name"]] = item

    def __enter__(self) -> JobRecorder:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def of_plan(self, kind: str, plan: str) -> list[dict[str, Any]]:
        """The plan's Jobs or pods by batch number."""
        found = [
            i for i in self.seen[kind].values() if i["metadata"]["labels"]["vectors.aios.dev/plan"] == plan
        ]
        return sorted(found, key=lambda item: int(item["metadata"]["labels"]["vectors.aios.dev/batch"]))

    def results(self, plan: str) -> list[dict[str, Any]]:
        """The worker results, from the pods' termination messages, by batch number."""
        messages = []
        for pod in self.of_plan("pods", plan):
            state = pod["status"]["containerStatuses"][0]["state"]
            messages.append(json.loads(state["terminated"]["message"]))
        return messages


def _node_cpus(kubectl: Kubectl) -> float:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return sum(float(node["status"]["allocatable"]["cpu"]) for node in nodes)


def test_finished_jobs_step_their_plan_and_the_next_plan_is_sized_by_their_pace(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus_server: MilvusLiteServer,
    source_db: Path,
    tmp_path: Path,
) -> None:
    operator: OperatorProcess = start_operator(
        cluster, namespace, milvus_server.uri, tmp_path / "operator.log",
        "--plan-interval", "3600", *host_worker_args(),
    )  # fmt: skip
    try:
        with JobRecorder(cluster, namespace) as recorder:
            _two_plans(kubectl, recorder, operator, source_db)
    finally:
        operator.shut_down(cluster, namespace)


def _two_plans(kubectl: Kubectl, recorder: JobRecorder, operator: OperatorProcess, source_db: Path) -> None:
    alias = unique("paced")
    # No catch-up: it waits on the sync worker's passes, which only Milvus shows, so the plan looks
    # at it on its timer (--plan-interval), and this operator ticks once an hour.
    no_catch_up = {"catchUp": False}
    first = quickstart(
        source_db, alias, batching={"recordsPerJob": 100, "maxConcurrentJobs": 1}, sync=no_catch_up
    )
    # applied together: the plan waits for its collection, which steps it when it becomes Ready
    apply(kubectl, first)
    status = eventually("the first plan succeeds", phase_is(kubectl, "Succeeded"), timeout=420)
    assert status["progress"]["recordsDone"] == ROWS
    assert status["sizing"] == {
        "recordsPerJob": 100,
        "maxConcurrentJobs": 1,
        "basis": "set in spec.batching",
    }

    jobs = recorder.of_plan("jobs", "articles-backfill")
    assert len(jobs) == 2  # one after the other: the second was launched when the first finished
    results = recorder.results("articles-backfill")
    settled = results[0]["batchSizes"]["median"]
    assignments = []
    for job in jobs:
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"] == {"requests": {"cpu": "1"}}
        env = {e["name"]: e for e in container["env"]}
        assignments.append(json.loads(env["VO_ASSIGNMENT"]["value"]))
    assert "startBatchSize" not in assignments[0]
    assert assignments[1]["startBatchSize"] == settled
    assert results[1]["batchSizes"]["first"] == settled
    for result in results:
        timings = result["timings"]
        assert timings["startupMs"] > timings["modelLoadMs"] > 0  # interpreter and imports come first
        assert result["model"]["threads"] == 1  # as many as the pod requested CPUs
    throughput = status["throughput"]
    assert throughput["jobRecordsPerSecond"] > 0
    assert throughput["jobStartupSeconds"] > 0
    assert operator.log_text().count("LaunchJob") == 2

    # the next plan on the same collection: auto sizing from the measured pace and the node's CPUs
    second = next(d for d in first if d["kind"] == "MigrationPlan")
    second["metadata"]["name"] = "articles-again"
    second["spec"]["batching"] = {}
    apply(kubectl, [second])
    again = eventually(
        "the second plan succeeds", phase_is(kubectl, "Succeeded", plan="articles-again"), timeout=420
    )
    sizing = again["sizing"]
    expected_at_once = max(1, min(32, int(_node_cpus(kubectl))))
    assert sizing["maxConcurrentJobs"] == expected_at_once
    assert "(measured by earlier Jobs)" in sizing["basis"]
    assert f"{throughput['jobRecordsPerSecond']:.0f} records/s per Job" in sizing["basis"]
    assert again["progress"]["recordsDone"] == ROWS
    assert again["progress"]["batchesTotal"] == len(recorder.of_plan("jobs", "articles-again"))
