"""The Milvus side of a tuning study: a sample of the stored vectors read once, scratch
collections holding it (``<alias>__tune_a`` and ``__tune_b``, owned like the physical ones and
always dropped after), and one measurement per candidate: its index built synchronously, then
recall@k against exact search and latency of one query at a time over held-out vectors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import DataType
from pymilvus.exceptions import MilvusException

from vector_operator.collection.milvus_layout import PRIMARY_KEY_FIELD, VECTOR_FIELD
from vector_operator.collection.ownership import OWNER_PROPERTY, Owner
from vector_operator.collection.physical_names import scratch_names
from vector_operator.milvus.collections import CALL_TIMEOUT_S, MilvusCollections
from vector_operator.tuning.scoring import Measurement, Vectors, exact_neighbours, recall
from vector_operator.tuning.search_space import Candidate

INSERT_PAGE = 1000
WARM_UP_QUERIES = 5
BUILD_TIMEOUT_S = 900.0
SAMPLE_SEED = 7


@dataclass(frozen=True)
class Sample:
    vectors: Vectors  # what the scratch collections hold; row i has id i
    queries: Vectors  # held out: never in the scratch collections

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])


class TuningBench:
    def __init__(self, milvus: MilvusCollections, alias: str, owner: Owner, metric: str, k: int) -> None:
        self.milvus, self.alias, self.owner, self.metric, self.k = milvus, alias, owner, metric, k
        self._exact: np.ndarray[Any, np.dtype[np.int64]] | None = None

    def read_sample(self, collection: str, sample_size: int, queries: int) -> Sample:
        """The first ``sample_size + queries`` stored vectors in key order, shuffled with a fixed
        seed and split: the same sample again after a restart."""
        wanted = sample_size + queries
        rows: list[list[float]] = []
        with self.milvus.session(f"read a sample of {collection}") as client:
            iterator = client.query_iterator(
                collection, batch_size=min(wanted, 4000), limit=wanted, filter="",
                output_fields=[VECTOR_FIELD], timeout=CALL_TIMEOUT_S,
            )  # fmt: skip
            try:
                while page := iterator.next():
                    rows.extend(row[VECTOR_FIELD] for row in page)
            finally:
                iterator.close()
        vectors = np.asarray(rows, dtype=np.float32)
        np.random.default_rng(SAMPLE_SEED).shuffle(vectors)
        held_out = min(queries, max(1, len(vectors) // 10))
        return Sample(vectors=vectors[held_out:], queries=vectors[:held_out])

    def drop_scratch(self) -> list[str]:
        """Drops this collection's scratch collections (also those a restarted study left)."""
        return [name for name in scratch_names(self.alias) if self.milvus.drop(name, self.owner)]

    def fill(self, name: str, sample: Sample) -> None:
        """A scratch collection holding the sample (row i with id i), without an index yet."""
        self.milvus.drop(name, self.owner)
        with self.milvus.session(f"create {name}") as client:
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field(PRIMARY_KEY_FIELD, DataType.INT64, is_primary=True)
            schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=int(sample.vectors.shape[1]))
            client.create_collection(
                name,
                schema=schema,
                properties={OWNER_PROPERTY: self.owner.to_property()},
                timeout=CALL_TIMEOUT_S,
            )
            for start in range(0, sample.size, INSERT_PAGE):
                page = sample.vectors[start : start + INSERT_PAGE]
                client.insert(
                    name,
                    [{PRIMARY_KEY_FIELD: start + i, VECTOR_FIELD: v.tolist()} for i, v in enumerate(page)],
                    timeout=CALL_TIMEOUT_S,
                )
            client.flush(name, timeout=CALL_TIMEOUT_S)
        self._exact = exact_neighbours(sample.vectors, sample.queries, self.metric, self.k)

    def build(self, name: str, candidate: Candidate) -> str | None:
        """Builds ``candidate``'s index on ``name`` and loads it; Milvus's refusal, or None. A
        refusal is told from an outage by asking the server something harmless right after: an
        unreachable Milvus raises MilvusUnavailable (the round is retried), a refusal is recorded."""
        with self.milvus.session(f"build {candidate.describe()} on {name}") as client:
            client.release_collection(name, timeout=CALL_TIMEOUT_S)
            for existing in client.list_indexes(name, timeout=CALL_TIMEOUT_S):
                client.drop_index(name, existing, timeout=CALL_TIMEOUT_S)
            params = client.prepare_index_params()
            params.add_index(
                field_name=VECTOR_FIELD,
                index_type=candidate.index_type,
                metric_type=self.metric,
                params=dict(candidate.params),
            )
            try:
                client.create_index(name, params, timeout=BUILD_TIMEOUT_S, sync=True)
                client.load_collection(name, timeout=BUILD_TIMEOUT_S)
            except MilvusException as error:
                client.list_collections(timeout=CALL_TIMEOUT_S)  # still reachable: it was a refusal
                return f"Milvus refused the index: {error.message}"
        return None

    def _searches(
        self, name: str, candidate: Candidate, queries: Vectors
    ) -> Iterator[tuple[list[int], float]]:
        """One search per query (MilvusException passes through: the caller tells refusal from
        outage)."""
        request = {"metric_type": self.metric, "params": dict(candidate.search_params)}
        client = self.milvus.clients.get(self.milvus.endpoint)
        for query in queries:
            started = time.perf_counter()
            hits = client.search(
                name, data=[query.tolist()], limit=self.k, search_params=request,
                anns_field=VECTOR_FIELD, timeout=CALL_TIMEOUT_S,
            )[0]  # fmt: skip
            elapsed = (time.perf_counter() - started) * 1000
            yield [int(hit["id"]) for hit in hits], elapsed

    def measure(self, name: str, candidate: Candidate, sample: Sample) -> Measurement:
        """Builds ``candidate`` on ``name`` and measures it on the held-out queries; a candidate
        Milvus refuses (to build, or to search with) is a failed measurement, not an outage."""
        refused = self.build(name, candidate)
        if refused is not None:
            return Measurement(None, None, None, failure=refused)
        try:
            for _ in self._searches(name, candidate, sample.queries[:WARM_UP_QUERIES]):
                pass
            found, latencies = zip(*self._searches(name, candidate, sample.queries), strict=True)
        except MilvusException as error:
            with self.milvus.session(f"reach {name}") as client:
                client.list_collections(timeout=CALL_TIMEOUT_S)  # still reachable: it was a refusal
            return Measurement(None, None, None, failure=f"Milvus refused the search: {error.message}")
        return self._figures(list(found), list(latencies))

    def _figures(self, found: list[list[int]], latencies: list[float]) -> Measurement:
        assert self._exact is not None, "fill() computes the exact neighbours first"
        p50, p95 = np.percentile(latencies, [50, 95])
        return Measurement(recall(found, self._exact), float(p50), float(p95))

    def side_by_side(
        self, first: Candidate, second: Candidate, sample: Sample, rounds: int = 3
    ) -> tuple[Measurement, Measurement]:
        """Both candidates built (on the two scratch collections) and searched turn by turn, query
        by query, so that both meet the same load: a fair comparison on a noisy machine."""
        a, b = scratch_names(self.alias)
        for name, candidate in ((a, first), (b, second)):
            if name != a:
                self.fill(name, sample)
            refused = self.build(name, candidate)
            if refused is not None:
                failed = Measurement(None, None, None, failure=refused)
                return (failed, failed) if name == a else (self.measure(a, first, sample), failed)
        results: dict[str, tuple[list[list[int]], list[float]]] = {a: ([], []), b: ([], [])}
        order = [(a, first), (b, second)]
        with self.milvus.session(f"compare {first.describe()} with {second.describe()}"):
            for round_number in range(rounds):
                for query in sample.queries:
                    for name, candidate in order if round_number % 2 == 0 else order[::-1]:
                        (hits, elapsed), *_ = self._searches(name, candidate, query[None, :])
                        if round_number == 0:
                            results[name][0].append(hits)
                        results[name][1].append(elapsed)
        return self._figures(*results[a]), self._figures(*results[b])
