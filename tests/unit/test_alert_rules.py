"""The Prometheus rules judge each plan against its own levels (whose defaults are the seed's
thresholds), read only metrics the operator exports, and record the design's monitoring view.
promtool runs them against series in tests/integration/test_prometheus_rules.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from tests.unit.plan_observations import NOW, generating_status, plan_spec, step

from vector_operator.api.migrationplan import QualitySpec
from vector_operator.controller.plan_metrics import publish
from vector_operator.metrics import OperatorMetrics
from vector_operator.migration.observation import PlanIdentity

RULES = Path(__file__).resolve().parents[2] / "charts" / "vector-operator" / "files" / "prometheus-rules.yaml"


def groups() -> list[dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return list(document["groups"])


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in groups() for rule in group["rules"] if "alert" in rule}


def test_each_plan_is_held_to_its_own_levels_whose_defaults_are_the_seeds() -> None:
    found = alerts()
    for alert, metric in (
        ("VectorMigrationCoherence", "coherence"),
        ("VectorMigrationProcessingTime", "processing_time_ms"),
        ("VectorMigrationFailureRate", "failure_rate"),
    ):
        for level in ("Warning", "Critical"):
            rule = found[f"{alert}{level}"]
            assert f'vector_operator_plan_quality{{metric="{metric}"}}' in rule["expr"]
            assert f'metric="{metric}", level="{level.lower()}"' in rule["expr"]
            assert rule["labels"]["severity"] == level.lower()
    # A plan that sets nothing exports the seed's thresholds as its levels.
    metrics = OperatorMetrics()
    status = generating_status()
    publish(metrics, PlanIdentity("ns", "p", "u", 1, NOW), plan_spec(), status, step(status), "articles")
    seed = {
        ("coherence", "warning"): 0.90,
        ("coherence", "critical"): 0.85,
        ("processing_time_ms", "warning"): 150,
        ("processing_time_ms", "critical"): 250,
        ("failure_rate", "warning"): 0.02,
        ("failure_rate", "critical"): 0.05,
    }
    quality = QualitySpec()
    for (metric, level), value in seed.items():
        labels = {"namespace": "ns", "plan": "p", "metric": metric, "level": level}
        assert metrics.registry.get_sample_value("vector_operator_plan_threshold", labels) == value
        field = {"coherence": quality.coherence, "processing_time_ms": quality.processing_time_ms}.get(
            metric, quality.failure_rate
        )
        assert getattr(field, level) == value


def test_every_rule_reads_a_metric_the_operator_exports_or_a_recorded_one() -> None:
    exported = {
        sample
        for metric in OperatorMetrics().registry.collect()
        for sample in (metric.name, f"{metric.name}_total", f"{metric.name}_sum", f"{metric.name}_count")
    }
    recorded = {rule["record"] for group in groups() for rule in group["rules"] if "record" in rule}
    for group in groups():
        for rule in group["rules"]:
            read = set(re.findall(r"vector_operator_[a-z_]+", rule["expr"]))
            read |= {name for name in re.findall(r"vector:[a-z0-9_:]+", rule["expr"])}
            if rule.get("record") == "vector:operator:up_ratio1d":
                assert 'up{job="vector-operator"}' in rule["expr"]  # Prometheus's own scrape health
                continue
            assert read, rule
            missing = {name for name in read if name not in exported and name not in recorded}
            assert not missing, f"{rule.get('alert') or rule.get('record')} reads {missing}"


def test_the_view_records_the_designs_hourly_figures_and_success_metrics() -> None:
    recorded = {rule["record"] for group in groups() for rule in group["rules"] if "record" in rule}
    assert {
        "vector:vectors_generated:increase1h",
        "vector:batch_processing_seconds:avg1h",
        "vector:batch_coherence:avg1h",
        "vector:batch_coherence:min1h",
        "vector:batch_coherence:max1h",
        "vector:throughput:vectors_per_minute",
        "vector:search_latency_p95:ms",
        "vector:coherence:mean",
        "vector:operator:up_ratio1d",
    } <= recorded
