"""A Job's fixed cost: the worker's command imports no part of the operator (Kopf, the Kubernetes
client, Prometheus, the handlers), and its start-up is measured from the process's start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vector_operator.controller.job_completion import owning_plan
from vector_operator.worker.process_start import seconds_since_start

OPERATOR_ONLY = (
    "kopf",
    "kubernetes",
    "prometheus_client",
    "vector_operator.handlers",
    "vector_operator.controller",
)


def test_the_worker_command_imports_nothing_of_the_operator() -> None:
    probe = (
        "import sys, vector_operator.cli, vector_operator.worker.command, vector_operator.worker.batch_run;"
        f" print(','.join(m for m in {OPERATOR_ONLY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_process_age_comes_from_the_kernel(tmp_path: Path) -> None:
    age = seconds_since_start()
    assert age is not None
    assert age > 0
    # a process that started 12.5 s after boot, read 100 s after boot: 87.5 s old
    (tmp_path / "self").mkdir()
    fields = ["S"] + ["0"] * 18 + ["1250"] + ["0"] * 10  # field 22 (starttime) is the 20th after the name
    (tmp_path / "self" / "stat").write_text("4242 (python worker) " + " ".join(fields))
    (tmp_path / "uptime").write_text("100.00 180.00\n")
    expected = 100.0 - 1250 / os.sysconf("SC_CLK_TCK")
    assert seconds_since_start(tmp_path) == expected
    assert seconds_since_start(tmp_path / "missing") is None


def test_only_jobs_a_plan_controls_step_a_plan() -> None:
    owned = {
        "metadata": {
            "ownerReferences": [
                {
                    "apiVersion": "vectors.aios.dev/v1alpha1",
                    "kind": "MigrationPlan",
                    "name": "p",
                    "uid": "u",
                    "controller": True,
                }
            ]
        }
    }
    assert owning_plan(owned) == ("p", "u")
    assert owning_plan({"metadata": {}}) is None
    other = {
        "metadata": {
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "CronJob", "name": "c", "uid": "x", "controller": True}
            ]
        }
    }
    assert owning_plan(other) is None
