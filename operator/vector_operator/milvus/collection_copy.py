"""Copying a physical collection's stored rows (keys, vectors, scalar fields) into another one in
pages, in key order, with Milvus's query iterator, and comparing the two: the Milvus side of a
re-index (:mod:`vector_operator.collection.reindex`). Rows are upserted, so a page copied again
after a restart replaces itself instead of duplicating."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vector_operator.collection.milvus_layout import PRIMARY_KEY_FIELD
from vector_operator.collection.reindex import CopyCheck
from vector_operator.milvus.collections import CALL_TIMEOUT_S, MilvusCollections

INDEX_WAIT_S = 600.0


@dataclass(frozen=True)
class Page:
    rows: int
    last_key: str  # JSON of the last primary key copied
    seconds: float  # time this page took, the rate cap's pause included


def key_filter(after: str | None) -> str:
    """The filter expression for keys after ``after`` (JSON of an int or a string)."""
    if after is None:
        return ""
    key = json.loads(after)
    return f"{PRIMARY_KEY_FIELD} > {json.dumps(key)}"


def copy_rows(
    milvus: MilvusCollections,
    source: str,
    target: str,
    after: str | None,
    page_size: int,
    max_per_second: int | None,
    on_page: Callable[[Page], None],
) -> None:
    """Upserts every row of ``source`` with a key after ``after`` into ``target``, page by page;
    ``on_page`` hears of each page once it is written."""
    fields = ["*"]
    started_all = time.monotonic()
    copied_all = 0
    with milvus.session(f"copy {source} to {target}") as client:
        iterator = client.query_iterator(
            source,
            batch_size=page_size,
            filter=key_filter(after),
            output_fields=fields,
            timeout=CALL_TIMEOUT_S,
        )
        try:
            while True:
                started = time.monotonic()
                rows: list[dict[str, Any]] = iterator.next()
                if not rows:
                    break
                client.upsert(target, rows, timeout=CALL_TIMEOUT_S)
                copied_all += len(rows)
                if max_per_second is not None:
                    ahead = copied_all / max_per_second - (time.monotonic() - started_all)
                    if ahead > 0:
                        time.sleep(ahead)
                on_page(Page(len(rows), json.dumps(rows[-1][PRIMARY_KEY_FIELD]), time.monotonic() - started))
        finally:
            iterator.close()


def wait_indexed(milvus: MilvusCollections, name: str, timeout_s: float = INDEX_WAIT_S) -> str | None:
    """Flushes ``name`` and waits until its index covers every row (searches on unflushed or
    unindexed rows are slow). None when it does; otherwise why not, starting with IndexBuildFailed
    (Milvus gave up: for good) or IndexBuilding (still at it after ``timeout_s``: look again later)."""
    milvus.flush(name)
    deadline = time.monotonic() + timeout_s
    while True:
        index = milvus.observe_index(name)
        if index is not None and index.state == "Finished" and index.pending_rows == 0:
            return None
        if index is not None and index.state == "Failed":
            why = index.failure or "no reason given"
            return f"IndexBuildFailed: Milvus failed to build the index of {name}: {why}"
        if time.monotonic() > deadline:
            pending = f"{index.pending_rows} rows pending" if index is not None else "no index yet"
            return f"IndexBuilding: the index of {name} is still being built ({pending})"
        time.sleep(0.5)


def compare(
    milvus: MilvusCollections, source: str, target: str, sample_size: int
) -> tuple[int, int, int, list[str]]:
    """Both counts, and the keys of sampled source rows whose copy differs or is missing."""
    source_count, target_count = milvus.count(source), milvus.count(target)
    with milvus.session(f"compare {source} with {target}") as client:
        sampled: list[dict[str, Any]] = (
            client.query(
                source,
                filter="",
                limit=min(sample_size, source_count),
                output_fields=["*"],
                timeout=CALL_TIMEOUT_S,
            )
            if source_count
            else []
        )
        keys = [row[PRIMARY_KEY_FIELD] for row in sampled]
        copies = {
            row[PRIMARY_KEY_FIELD]: row
            for row in (
                client.query(
                    target,
                    filter=f"{PRIMARY_KEY_FIELD} in {json.dumps(keys)}",
                    output_fields=["*"],
                    timeout=CALL_TIMEOUT_S,
                )
                if keys
                else []
            )
        }
    differing = [str(row[PRIMARY_KEY_FIELD]) for row in sampled if copies.get(row[PRIMARY_KEY_FIELD]) != row]
    return source_count, target_count, len(sampled), differing


def check_copy(
    milvus: MilvusCollections, source: str, target: str, sample_size: int, recall: float | None
) -> CopyCheck:
    source_count, target_count, compared, differing = compare(milvus, source, target, sample_size)
    return CopyCheck(source_count, target_count, compared, differing, recall)
