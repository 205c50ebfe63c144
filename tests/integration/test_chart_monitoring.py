"""The chart's monitoring parts, rendered by the real helm and checked by the real API server and
promtool: a PrometheusRule carrying exactly the rules file, and a Grafana dashboard ConfigMap whose
every query is valid PromQL over metrics the operator exports or the rules record."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.cluster import Kubectl, RunningCluster
from vector_operator.metrics import OperatorMetrics

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "vector-operator"


def render(cluster: RunningCluster, *values: str) -> list[dict[str, Any]]:
    command = [str(cluster.bin_dir / "helm"), "template", "vo", str(CHART), "--namespace", "monitoring"]
    for value in values:
        command += ["--set", value]
    rendered = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return [document for document in yaml.safe_load_all(rendered.stdout) if document]


def test_the_chart_lints_and_renders_nothing_for_monitoring_unless_asked(cluster: RunningCluster) -> None:
    linted = subprocess.run(
        [str(cluster.bin_dir / "helm"), "lint", str(CHART)], capture_output=True, text=True, timeout=120
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    documents = render(cluster)
    assert "Deployment" in {document["kind"] for document in documents}  # the operator itself
    assert not {document["kind"] for document in documents} & {"PrometheusRule", "ServiceMonitor"}
    labels = [document["metadata"].get("labels", {}) for document in documents]
    assert not [label for label in labels if "grafana_dashboard" in label]


def test_the_prometheus_rule_and_the_dashboard_render_valid(
    cluster: RunningCluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    documents = render(cluster, "monitoring.prometheusRule.enabled=true", "monitoring.dashboard.enabled=true")
    kinds = {document["kind"]: document for document in documents}
    rule = kinds["PrometheusRule"]
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    dashboard_map = kinds["ConfigMap"]
    assert dashboard_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    in_test_namespace = {
        **dashboard_map,
        "metadata": {**dashboard_map["metadata"], "namespace": kubectl.namespace},
    }
    kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(in_test_namespace))

    dashboard = json.loads(dashboard_map["data"]["vector-operator.json"])
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(queries) >= 15
    exported = {
        sample
        for metric in OperatorMetrics().registry.collect()
        for sample in (metric.name, f"{metric.name}_total", f"{metric.name}_sum", f"{metric.name}_count")
    }
    recorded = {
        rule["record"] for group in rule["spec"]["groups"] for rule in group["rules"] if "record" in rule
    }
    for query in queries:
        names = set(re.findall(r"vector_operator_[a-z_]+|vector:[a-z0-9_:]+", query))
        assert names, query
        assert names <= exported | recorded, query
    # Every query is valid PromQL: promtool checks them as recording rules.
    as_rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query_{index}",
                        "expr": query.replace("$namespace", ".*").replace("$plan", ".*"),
                    }
                    for index, query in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(as_rules))
    promtool = shutil.which("promtool")
    assert promtool is not None, "apt-get install prometheus (.ci/run installs it)"
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
