"""The Prometheus alert rules use the seed's thresholds, which are the defaults of a
MigrationPlan's spec.quality, and only metrics the operator exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from vector_operator.api.migrationplan import QualitySpec
from vector_operator.metrics import OperatorMetrics

RULES = Path(__file__).resolve().parents[2] / "charts" / "vector-operator" / "files" / "prometheus-rules.yaml"


def rules() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}


def threshold(expr: str) -> float:
    return float(re.split(r"[<>]", expr)[-1])


def test_thresholds_are_the_seeds_and_the_quality_defaults() -> None:
    quality = QualitySpec()
    found = rules()
    expected = {
        "VectorMigrationCoherenceWarning": (quality.coherence.warning, 0.90),
        "VectorMigrationCoherenceCritical": (quality.coherence.critical, 0.85),
        "VectorMigrationProcessingTimeWarning": (quality.processing_time_ms.warning, 150),
        "VectorMigrationProcessingTimeCritical": (quality.processing_time_ms.critical, 250),
        "VectorMigrationFailureRateWarning": (quality.failure_rate.warning, 0.02),
        "VectorMigrationFailureRateCritical": (quality.failure_rate.critical, 0.05),
    }
    for alert, (default, seed) in expected.items():
        assert threshold(found[alert]["expr"]) == default == seed, alert
        assert found[alert]["labels"]["severity"] == ("critical" if "Critical" in alert else "warning")


def test_every_rule_reads_a_metric_the_operator_exports() -> None:
    exported = {
        sample_name
        for metric in OperatorMetrics().registry.collect()
        for sample_name in (metric.name, f"{metric.name}_total")
    }
    for alert, rule in rules().items():
        names = set(re.findall(r"vector_operator_[a-z_]+", rule["expr"]))
        assert names, alert
        assert names <= exported, f"{alert} reads {names - exported}, which the operator does not export"
