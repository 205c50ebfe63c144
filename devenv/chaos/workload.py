"""The chaos run's migration: a SQLite table of awkward rows, what a correct migration of it must
produce (computed here from the rows, independently of the operator), and the manifests.

Every awkward row has exactly one defect, so its fate is known in advance: sparse, negative and
huge keys; a NULL key (skipped when the plan is made); text that is NULL or blank (skipped by
reason); a field that is NULL or longer than the collection allows (skipped by reason); text far
longer than the model reads (truncated, still embedded) and text in many scripts (embedded)."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CATEGORY_MAX_LENGTH = 64
NON_ASCII = (
    "Grüße aus Köln: Straßenbahn, Öl und Ähre",
    "東京の天気は晴れ、気温は二十五度です",
    "مرحبا بالعالم، هذا نص عربي للاختبار",
    "Ελληνικά γράμματα και λέξεις για δοκιμή",  # noqa: RUF001 - Greek on purpose
    "emoji 🚀🔥✨ in a sentence 👩‍💻 with ZWJ",
    "combining: e\u0301 a\u0308 o\u0302 and a soft\u00adhyphen",
    "Тестовый текст на русском языке",
    "हिंदी में एक छोटा सा वाक्य",
)
WORDS = (
    "vector", "index", "recall", "latency", "shard", "replica", "embedding", "cluster", "query",
    "batch", "alias", "collection", "backup", "restore", "migration", "quality", "coherence",
    "operator", "kubernetes", "milvus", "search", "model",
)  # fmt: skip


@dataclass
class Expected:
    """What a complete, exact migration of the table yields."""

    rows: int = 0
    """Every row of the table."""
    embedded_keys: set[int] = field(default_factory=set)
    """The keys whose rows must be in the collection, once each."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Rows skipped, by the operator's reason (nullKey included)."""


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()


def _keys(rng: random.Random, count: int) -> list[int]:
    """Distinct keys: dense runs, wide gaps, negatives and values near the INT64 edges."""
    keys: set[int] = {-(2**63) + 1, 2**63 - 1, 0, -1}
    cursor = rng.randint(-(10**6), 10**6)
    while len(keys) < count:
        cursor += rng.choice((1, 1, 1, 2, 7, 1000, 10**9, 10**12))
        keys.add(cursor if rng.random() > 0.1 else -cursor)
    return rng.sample(sorted(keys), count)  # inserted in random order


FAILING_TAIL = 0.1
"""The share of rows, those with the highest keys, that have no text when the run's policy must
fire: the last batches fail (failureRate 1.0) and the rollback comes late in Generating."""


def write_source(path: Path, rows: int, seed: int, failing_tail: bool = False) -> Expected:
    """Writes ``rows`` rows (about a quarter of them awkward) to table ``articles`` of a new
    SQLite file; returns what a correct migration must produce."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    expected = Expected()
    records: list[tuple[Any, ...]] = []
    keys = _keys(rng, rows - 1)
    tail = set(sorted(keys)[-int(len(keys) * FAILING_TAIL) :]) if failing_tail else set()
    for key in keys:
        title: str | None = _sentence(rng, rng.randint(2, 6))
        body: str | None = _sentence(rng, rng.randint(8, 40))
        category: str | None = rng.choice(("news", "docs", "blog", "ops"))
        draw = rng.random()
        if draw < 0.04:
            title, body, reason = None, None, "nullText"
        elif draw < 0.08:
            title, body, reason = rng.choice(("", " ", "\t")), rng.choice(("", "  \n ")), "emptyText"
        elif draw < 0.11:
            category, reason = None, "nullField"
        elif draw < 0.14:
            category, reason = "分類" * 20, "fieldTooLong"  # 40 characters, 120 UTF-8 bytes
        elif draw < 0.18:
            body, reason = " ".join(rng.choice(WORDS) for _ in range(5000)), ""  # truncated, embedded
        elif draw < 0.26:
            title, body, reason = rng.choice(NON_ASCII), rng.choice(NON_ASCII), ""
        else:
            reason = ""
        if key in tail:
            title, body, reason = None, None, "nullText"
        if reason:
            expected.skipped[reason] += 1
        else:
            expected.embedded_keys.add(key)
        records.append((key, title, body, category))
    records.append((None, "a row without a key", "it cannot be addressed", "news"))
    expected.skipped["nullKey"] += 1
    expected.rows = len(records)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE articles (id INTEGER UNIQUE, title TEXT, body TEXT, category TEXT)")
        connection.executemany("INSERT INTO articles VALUES (?, ?, ?, ?)", records)
    return expected


def manifests(
    source: Path,
    alias: str,
    *,
    records_per_job: int,
) -> list[dict[str, Any]]:
    """The Secret, VectorCollection, MigrationPlan (BlueGreen) and RollbackPolicy of one run."""
    api = "vectors.aios.dev/v1alpha1"
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "chaos-db"},
            "stringData": {"url": f"sqlite:///{source}"},
        },
        {
            "apiVersion": api,
            "kind": "VectorCollection",
            "metadata": {"name": "articles"},
            "spec": {
                "collectionName": alias,
                "dimension": 384,
                "metricType": "COSINE",
                "index": {"type": "HNSW", "params": {"M": 16, "efConstruction": 100}},
                "searchParams": {"ef": 64},
                "fields": [{"name": "category", "type": "VARCHAR", "maxLength": CATEGORY_MAX_LENGTH}],
                "embedding": {"model": MODEL, "normalize": True, "device": "cpu"},
                "deletionPolicy": "Delete",
            },
        },
        {
            "apiVersion": api,
            "kind": "MigrationPlan",
            "metadata": {"name": "articles-backfill"},
            "spec": {
                "targetRef": {"name": "articles"},
                "mode": "BlueGreen",
                "source": {
                    "sql": {
                        "urlSecretRef": {"name": "chaos-db", "key": "url"},
                        "table": "articles",
                        "primaryKey": "id",
                        "textColumns": ["title", "body"],
                        "fields": {"category": "category"},
                    }
                },
                "batching": {"recordsPerJob": records_per_job, "maxConcurrentJobs": 2},
                # about 14 % of the rows are skipped by design: the gate allows that share, not more
                "quality": {"sampleSize": 20, "failureRate": {"warning": 0.3, "critical": 0.5}},
            },
        },
        {
            "apiVersion": api,
            "kind": "RollbackPolicy",
            "metadata": {"name": "articles-guard"},
            "spec": {
                "planNames": ["articles-backfill"],
                "triggers": [
                    {"metric": "failureRate", "above": 0.5, "phases": ["Generating"]},
                    {"metric": "coherence", "below": 0.85, "phases": ["Generating", "Validating"]},
                ],
                "actions": ["Pause", "Abort", "DropPartialCollection"],
            },
        },
    ]
