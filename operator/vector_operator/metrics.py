"""The operator's Prometheus metrics (served on `--metrics-port`, path /metrics)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

NAMESPACE = "vector_operator"


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "reconciles",
            "Reconciliations by resource kind and result (ok, milvus_unavailable, config_error, error).",
            ["kind", "result"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.milvus_calls = Histogram(
            "milvus_call_seconds",
            "Latency of the operator's Milvus calls by operation.",
            ["operation"],
            namespace=NAMESPACE,
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.collections = Gauge(
            "collections",
            "VectorCollections by phase.",
            ["phase"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.entities = Gauge(
            "collection_entities",
            "Exact entity count of the physical collection behind each VectorCollection's alias.",
            ["namespace", "name", "collection"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.search_latency = Gauge(
            "collection_search_latency_ms",
            "Canary search latency on each VectorCollection's alias, by quantile.",
            ["namespace", "name", "quantile"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "rollbacks",
            "Rollbacks run, by namespace, policy (or manual) and the metric that fired.",
            ["namespace", "policy", "metric"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.plan_quality = Gauge(
            "plan_quality",
            "A MigrationPlan's latest quality figures: coherence (mean), failure_rate,"
            " processing_time_ms (micro-batch p95) and batches_done.",
            ["namespace", "plan", "metric"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._phases: dict[str, str] = {}
        self._lock = threading.Lock()

    def observe_milvus_call(self, operation: str, seconds: float) -> None:
        self.milvus_calls.labels(operation).observe(seconds)

    def collection_phase(self, uid: str, phase: str | None) -> None:
        """Records one collection's phase (None: it is gone) and recounts the gauge."""
        with self._lock:
            if phase is None:
                self._phases.pop(uid, None)
            else:
                self._phases[uid] = phase
            counts: dict[str, int] = {}
            for value in self._phases.values():
                counts[value] = counts.get(value, 0) + 1
            for label in {
                *counts,
                *(s.labels.get("phase", "") for m in self.collections.collect() for s in m.samples),
            }:
                if label:
                    self.collections.labels(label).set(counts.get(label, 0))

    def forget_collection(self, uid: str, namespace: str, name: str) -> None:
        self.collection_phase(uid, None)
        for metric in (self.entities, self.search_latency):
            for labels in list(metric._metrics):
                if labels[:2] == (namespace, name):
                    metric.remove(*labels)

    def serve(self, port: int, address: str) -> None:
        start_http_server(port, addr=address, registry=self.registry)
