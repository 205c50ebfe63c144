"""What an SRE sees of a real migration and a real rollback: a real Prometheus scraping the operator
evaluates the recording rules to the figures the plan's status shows and fires the rollback alert
in its own API; `kubectl vector` shows the plan, draws its report from what it recorded, rolls it
back, and lists the history."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from tests.conftest import REPO_ROOT, OperatorProcess
from tests.e2e.migration_support import ROWS, apply, eventually, phase_is, plan_status, quickstart, vector
from tests.polling import unique

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.prometheus_server import PrometheusServer

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]

PLAN = "articles-backfill"
RULES = REPO_ROOT / "charts" / "vector-operator" / "files" / "prometheus-rules.yaml"


@pytest.fixture
def prometheus(migration_operator: OperatorProcess, tmp_path: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(
        tmp_path / "prometheus", [f"127.0.0.1:{migration_operator.metrics_port}"], [RULES]
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def sample(prometheus: PrometheusServer, expression: str) -> float | None:
    result = prometheus.query(expression)
    return float(result[0]["value"][1]) if result else None


def test_a_migration_and_its_rollback_as_prometheus_and_kubectl_vector_show_them(
    cluster: RunningCluster,
    kubectl: Kubectl,
    namespace: str,
    prometheus: PrometheusServer,
    milvus: MilvusClient,
    source_db: Path,
    tmp_path: Path,
) -> None:
    alias = unique("watched")
    # four Jobs, for a report with several batches (the quickstart's auto sizing makes one)
    apply(kubectl, quickstart(source_db, alias, batching={"recordsPerJob": 50, "maxConcurrentJobs": 2}))
    status = eventually("the plan succeeds", phase_is(kubectl, "Succeeded"))

    # Prometheus's recording rules give the figures the plan's status shows.
    selector = f'{{namespace="{namespace}", plan="{PLAN}"}}'
    eventually(
        "the generated vectors are recorded",
        lambda: (
            sample(prometheus, f"vector:vectors_generated:total{selector}")
            == status["progress"]["recordsDone"]
            == ROWS
        ),
        timeout=60,
    )
    average = sample(prometheus, f"vector:batch_coherence:avg1h{selector}")
    assert average == pytest.approx(status["quality"]["coherence"]["mean"], abs=1e-3)
    assert sample(prometheus, f"vector:coherence:mean{selector}") == pytest.approx(
        status["quality"]["coherence"]["mean"]
    )
    assert (
        sample(
            prometheus,
            f'vector_operator_batches_finished_total{{namespace="{namespace}", outcome="succeeded"}}',
        )
        == 4
    )

    table = vector(cluster, namespace, "status")
    line = next(row for row in table.splitlines() if PLAN in row)
    assert "Succeeded" in line
    assert "4/4" in line
    assert f"{status['quality']['coherence']['mean']:.3f}" in line

    report = tmp_path / "report.png"
    assert vector(cluster, namespace, "report", PLAN, "-o", str(report)).startswith(
        f"wrote {report}: 4 batches"
    )
    assert png_size(report) == (1000, 900)
    page = tmp_path / "report.html"
    vector(cluster, namespace, "report", PLAN, "-o", str(page))
    assert "data:image/png;base64," in page.read_text()

    assert (
        vector(cluster, namespace, "rollback", PLAN).strip()
        == f"rolling back {PLAN}: the alias returns to {alias}__v1"
    )
    eventually("the plan is rolled back", phase_is(kubectl, "RolledBack"), timeout=120)
    assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"

    def firing() -> dict[str, str] | None:
        for alert in prometheus.alerts():
            labels = alert["labels"]
            if labels["alertname"] == "VectorMigrationRolledBack" and labels.get("namespace") == namespace:
                return labels if alert["state"] == "firing" else None
        return None

    labels = eventually("Prometheus fires the rollback alert", firing, timeout=60)
    assert (labels["policy"], labels["metric"]) == ("manual", "manual")
    swings = f'vector_operator_alias_swaps_total{{namespace="{namespace}", collection="{alias}"'
    assert sample(prometheus, f'{swings}, reason="cutover"}}') == 1
    eventually(
        "the revert is counted", lambda: sample(prometheus, f'{swings}, reason="revert"}}') == 1, timeout=30
    )

    history = vector(cluster, namespace, "history").splitlines()
    assert "Rollback" in history[0]
    assert "by hand: spec.rollback: true in PostCutover; RevertAlias Succeeded" in history[0]
    assert "CutOver" in history[1]
    assert json.loads(kubectl("get", "migrationplan", PLAN, "-o", "json").stdout)["status"]["cutOverAt"]
    assert (
        plan_status(kubectl)["anomalies"]["duplicateVectors"] == 0
    )  # the workers' counts reached the status
