"""`kubectl vector` through the real kubectl (its plugin discovery finds `kubectl-vector` on PATH)
against the real API server: the status table, every action as an idempotent patch with a
one-line answer, the history, lint, and errors as one line with a non-zero exit. The plans here
are objects whose status the test writes; the e2e tests run the plugin against a live operator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.plan_manifests import minimal_plan

from localcluster.cluster import Kubectl, RunningCluster

pytestmark = pytest.mark.cluster

COLLECTION = {
    "apiVersion": "vectors.aios.dev/v1alpha1",
    "kind": "VectorCollection",
    "metadata": {"name": "articles"},
    "spec": {"collectionName": "articles", "dimension": 384, "embedding": {"model": "m"}},
}


class Plugin:
    def __init__(self, cluster: RunningCluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "PATH": f"{Path(sys.executable).parent}:{cluster.bin_dir}:{os.environ['PATH']}",
        }

    def __call__(self, *args: str, namespaced: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.cluster.bin_dir / "kubectl"), "vector", *args]
        if namespaced:
            command += ["-n", self.namespace]
        return subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=120)


@pytest.fixture
def plugin(cluster: RunningCluster, crds: None, namespace: str) -> Plugin:
    return Plugin(cluster, namespace)


def set_status(kubectl: Kubectl, name: str, status: dict[str, Any]) -> None:
    kubectl(
        "patch",
        "migrationplan",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def spec_of(kubectl: Kubectl, name: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(kubectl("get", "migrationplan", name, "-o", "json").stdout)["spec"]
    return got


def answer(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_status_shows_collections_and_plans_in_one_table(plugin: Plugin, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(COLLECTION))
    kubectl("apply", "-f", "-", input=json.dumps(minimal_plan("backfill")))
    set_status(
        kubectl,
        "backfill",
        {
            "phase": "Generating",
            "progress": {"recordsDone": 500, "recordsTotal": 2000, "summary": "5/20"},
            "throughput": {"recordsPerSecond": 25.0},
            "quality": {"coherence": {"mean": 0.9912}},
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "Generating",
                    "lastTransitionTime": "2026-11-30T12:00:00Z",
                }
            ],
        },
    )
    table = answer(plugin("status"))
    assert "KIND" in table
    assert "NAMESPACE" not in table
    line = next(row for row in table.splitlines() if "backfill" in row)
    for cell in (
        "MigrationPlan",
        "Generating",
        "██░░░░░░░░  25% 5/20",
        "25.0/s",
        "1m00s",
        "0.991",
        "Generating",
    ):
        assert cell in line, line
    assert "VectorCollection" in next(row for row in table.splitlines() if "articles" in row)
    everywhere = answer(plugin("status", "-A", namespaced=False))
    assert "NAMESPACE" in everywhere
    assert plugin.namespace in everywhere
    watched = answer(plugin("status", "--watch", "--interval", "0.2", "--frames", "2"))
    assert watched.count("--- ") == 2  # two tables, each under its time


def test_every_action_is_an_idempotent_patch_with_a_one_line_answer(plugin: Plugin, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(minimal_plan("manual", approval="Manual", cutover="Manual")))
    set_status(kubectl, "manual", {"phase": "Planning"})
    assert answer(plugin("approve", "manual")) == "approved manual: it starts once planned"
    assert answer(plugin("approve", "manual")) == "manual is already approved"
    assert spec_of(kubectl, "manual")["approved"] is True

    set_status(
        kubectl,
        "manual",
        {"phase": "Generating", "pause": {"by": "RollbackPolicy/guard", "since": "2026-11-30T12:00:00Z"}},
    )
    assert answer(plugin("pause", "manual")) == "paused manual: no new Jobs; running Jobs finish"
    assert answer(plugin("pause", "manual")) == "manual is already paused"
    resumed = answer(plugin("resume", "manual"))
    assert resumed.startswith("resumed manual (the pause RollbackPolicy/guard decided is lifted")
    assert spec_of(kubectl, "manual")["paused"] is False
    stored = json.loads(kubectl("get", "migrationplan", "manual", "-o", "json").stdout)["status"]
    assert "pause" not in stored  # lifted in status, where the policy put it
    assert answer(plugin("resume", "manual")) == "manual is not paused"

    set_status(kubectl, "manual", {"phase": "CuttingOver"})
    assert answer(plugin("promote", "manual")).startswith("promoted manual")
    assert spec_of(kubectl, "manual")["cutoverApproved"] is True
    assert answer(plugin("abort", "manual")).startswith("aborting manual")
    assert answer(plugin("abort", "manual")) == "manual is already aborting"

    set_status(kubectl, "manual", {"phase": "Failed", "failedRanges": "3,7-9", "observedRetry": 0})
    assert answer(plugin("retry", "manual")) == "retrying manual: batches 3,7-9 run again (retry 1)"
    assert answer(plugin("retry", "manual")) == "manual already has retry 1 requested"
    assert spec_of(kubectl, "manual")["retry"] == 1

    refused = plugin("rollback", "manual")
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0  # one line
    assert "rollback undoes a Succeeded (or Syncing) plan's cutover; manual is Failed" in refused.stderr
    set_status(kubectl, "manual", {"phase": "Succeeded", "previousPhysicalCollection": "articles__v1"})
    assert answer(plugin("rollback", "manual")) == "rolling back manual: the alias returns to articles__v1"
    assert spec_of(kubectl, "manual")["rollback"] is True
    missing = plugin("approve", "missing")
    assert missing.returncode == 1
    assert f"MigrationPlan missing: not found in namespace {plugin.namespace}" in missing.stderr


def test_history_lists_cutovers_and_rollbacks_newest_first(plugin: Plugin, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(minimal_plan("reverted")))
    set_status(
        kubectl,
        "reverted",
        {
            "phase": "RolledBack",
            "previousPhysicalCollection": "articles__v1",
            "newPhysicalCollection": "articles__v2",
            "cutOverAt": "2026-11-30T12:00:00Z",
            "rollback": {
                "policy": "manual", "trigger": "spec.rollback: true", "phase": "PostCutover",
                "actions": ["RevertAlias"], "executedAt": "2026-11-30T12:05:00Z", "completed": True,
                "steps": [{"action": "RevertAlias", "result": "Succeeded"}],
            },
        },
    )  # fmt: skip
    lines = answer(plugin("history")).splitlines()
    assert len(lines) == 2
    assert "Rollback" in lines[0]
    assert "by hand: spec.rollback: true in PostCutover; RevertAlias Succeeded" in lines[0]
    assert "CutOver" in lines[1]
    assert "alias moved articles__v1 -> articles__v2" in lines[1]


def test_lint_and_help(plugin: Plugin, tmp_path: Path) -> None:
    bad = minimal_plan("bad", batching={"maxConcurrentJobs": 0})
    (tmp_path / "bad.yaml").write_text(json.dumps(bad))
    (tmp_path / "good.yaml").write_text(json.dumps(minimal_plan("good")))
    refused = plugin("lint", str(tmp_path / "bad.yaml"), namespaced=False)
    assert refused.returncode == 1
    assert "spec.batching.maxConcurrentJobs in body should be greater than or equal to 1" in refused.stdout
    assert answer(plugin("lint", str(tmp_path / "good.yaml"), namespaced=False)) == "1 file(s) valid"
    for command in (
        "status",
        "approve",
        "promote",
        "pause",
        "resume",
        "abort",
        "retry",
        "rollback",
        "history",
        "report",
        "lint",
    ):
        helped = plugin(command, "--help", namespaced=False)
        assert helped.returncode == 0, command
        assert "usage: kubectl vector" in helped.stdout
