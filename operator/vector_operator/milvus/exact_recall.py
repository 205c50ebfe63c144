"""recall@k of a collection's served search against a truly exact one: sampled stored vectors
are the queries; their exact k nearest neighbours are found by scoring every stored vector (a scan
in pages with Milvus's query iterator, scored with numpy: never the index, whose own widest search
may still be approximate, as quantized IVF or a server that ignores nlist are); the served ones
come from a search with the serving parameters. Latency of those searches comes with it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vector_operator.collection.milvus_layout import PRIMARY_KEY_FIELD, VECTOR_FIELD, CollectionLayout
from vector_operator.milvus.collections import CALL_TIMEOUT_S, MilvusCollections
from vector_operator.tuning.scoring import RunningTopK, recall

SCAN_PAGE = 4000


@dataclass(frozen=True)
class ServedRecall:
    recall_at_k: float | None  # None: nothing stored
    search_latency_p95_ms: float | None
    queries: int


def served_recall(
    milvus: MilvusCollections, name: str, layout: CollectionLayout, sample_size: int, k: int = 10
) -> ServedRecall:
    with milvus.session(f"sample {name}") as client:
        rows: list[dict[str, Any]] = client.query(
            name, filter="", limit=sample_size, output_fields=[VECTOR_FIELD], timeout=CALL_TIMEOUT_S
        )
    if not rows:
        return ServedRecall(None, None, 0)
    queries = np.asarray([row[VECTOR_FIELD] for row in rows], dtype=np.float32)
    exact = RunningTopK(queries, layout.space.metric, k)
    with milvus.session(f"scan {name}") as client:
        iterator = client.query_iterator(
            name, batch_size=SCAN_PAGE, filter="", output_fields=[VECTOR_FIELD], timeout=CALL_TIMEOUT_S
        )
        try:
            while page := iterator.next():
                vectors = np.asarray([row[VECTOR_FIELD] for row in page], dtype=np.float32)
                exact.add([row[PRIMARY_KEY_FIELD] for row in page], vectors)
        finally:
            iterator.close()
    served: list[list[object]] = []
    latencies: list[float] = []
    with milvus.session(f"search {name}") as client:
        for query in queries:
            started = time.perf_counter()
            hits = client.search(
                name, data=[query.tolist()], limit=k, search_params=layout.search_request(),
                anns_field=VECTOR_FIELD, timeout=CALL_TIMEOUT_S,
            )[0]  # fmt: skip
            latencies.append((time.perf_counter() - started) * 1000)
            served.append([hit["id"] for hit in hits])
    return ServedRecall(recall(served, exact.neighbours()), float(np.percentile(latencies, 95)), len(rows))
