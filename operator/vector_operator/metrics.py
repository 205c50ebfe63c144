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
            "A MigrationPlan's quality so far: coherence (mean of all samples), failure_rate (share of"
            " records skipped) and processing_time_ms (the highest batch p95 of micro-batch encode times).",
            ["namespace", "plan", "metric"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.vectors_generated = Counter(
            "vectors_generated",
            "Vectors a MigrationPlan's finished batches wrote to Milvus.",
            ["namespace", "plan"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.records_skipped = Counter(
            "records_skipped",
            "Records a MigrationPlan read but did not write, by reason (nullText, emptyText, nullKey ...).",
            ["namespace", "plan", "reason"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.batches_finished = Counter(
            "batches_finished",
            "Batches a MigrationPlan took in, by outcome (succeeded, failed).",
            ["namespace", "plan", "outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.batch_processing = Histogram(
            "batch_processing_seconds",
            "One observation per finished batch: the 95th percentile of its micro-batch encode times.",
            ["namespace", "plan"],
            namespace=NAMESPACE,
            registry=self.registry,
            buckets=(0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_coherence = Histogram(
            "batch_coherence",
            "One observation per finished batch: the mean coherence of its sampled records (-1..1).",
            ["namespace", "plan"],
            namespace=NAMESPACE,
            registry=self.registry,
            buckets=(0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 1.0),
        )
        self.batch_coherence_stat = Gauge(
            "batch_coherence_stat",
            "Coherence of the batches a MigrationPlan took in last: min, mean and max of their samples.",
            ["namespace", "plan", "stat"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.plan_threshold = Gauge(
            "plan_threshold",
            "A MigrationPlan's own quality levels (spec.quality, the seed's defaults unless it sets its own):"
            " coherence, failure_rate, processing_time_ms at warning and critical.",
            ["namespace", "plan", "metric", "level"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.alias_swaps = Counter(
            "alias_swaps",
            "Alias swings the operator made: cutover (to a plan's new collection) or revert (back to the"
            " previous one).",
            ["namespace", "collection", "reason"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.reindex_progress = Gauge(
            "reindex_progress",
            "A VectorCollection's latest re-index: copied and total vectors, and the copy rate"
            " (vectors_per_second).",
            ["namespace", "name", "measure"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.tuning_trials = Gauge(
            "tuning_trials",
            "Trials the latest tuning study of a VectorCollection has measured.",
            ["namespace", "name"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.tuning_result = Gauge(
            "tuning_result",
            "The latest study's side-by-side figures: parameters current or best; metric recall_at_k or"
            " search_p95_ms.",
            ["namespace", "name", "parameters", "metric"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.sync_lag = Gauge(
            "sync_lag_seconds",
            "How far a syncing MigrationPlan's collection is behind its source: seconds since the start of"
            " the sync worker's last complete pass (every change committed before it is applied).",
            ["namespace", "plan"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.sync_rows = Counter(
            "sync_rows",
            "Rows a MigrationPlan's sync applied, by kind: changed (inserted or updated), deleted, and of"
            " the changed ones reembedded (new text) or reused (the stored vector kept); skipped.",
            ["namespace", "plan", "kind"],
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
        for metric in (
            self.entities,
            self.search_latency,
            self.reindex_progress,
            self.tuning_trials,
            self.tuning_result,
        ):
            for labels in list(metric._metrics):
                if labels[:2] == (namespace, name):
                    metric.remove(*labels)

    def forget_entities(self, namespace: str, name: str, collection: str) -> None:
        """Removes the entity count of a physical collection that no longer serves the alias."""
        if (namespace, name, collection) in self.entities._metrics:
            self.entities.remove(namespace, name, collection)

    def forget_plan(self, namespace: str, plan: str) -> None:
        """Removes a deleted plan's series (its counters would otherwise be exported forever)."""
        for metric in (
            self.vectors_generated,
            self.records_skipped,
            self.batches_finished,
            self.batch_processing,
            self.batch_coherence,
            self.batch_coherence_stat,
            self.plan_threshold,
            self.plan_quality,
            self.sync_lag,
            self.sync_rows,
        ):
            for labels in list(metric._metrics):
                if labels[:2] == (namespace, plan):
                    metric.remove(*labels)

    def serve(self, port: int, address: str) -> None:
        start_http_server(port, addr=address, registry=self.registry)
