"""`vector-operator worker` from JSONL files (a glob) into a collection with string keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient
from worker_support import DIMENSION, MODEL, article_texts, entity_count

from localcluster.milvus_lite import MilvusLiteServer

pytestmark = pytest.mark.milvus


def test_jsonl_records_of_a_range_land_in_milvus_by_string_key(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    tmp_path: Path,
) -> None:
    texts = article_texts(120, seed=3)
    for part in range(2):
        with (tmp_path / f"articles-{part}.jsonl").open("wb") as out:
            for number in range(60 * part, 60 * (part + 1)):
                if number == 20:
                    out.write(b'{"uuid": "doc-020", "text": "caf\xe9 au lait"}\n')  # latin-1: invalidUtf8
                elif number == 21:
                    out.write(b'{"uuid": "doc-021"}\n')  # no text: nullText
                else:
                    out.write(
                        json.dumps({"uuid": f"doc-{number:03d}", "text": texts[number]}).encode() + b"\n"
                    )
    collection = new_collection(key_type="VARCHAR")
    document = {
        "batch": {"plan": "files", "index": 1},
        "milvus": {"uri": milvus_server.uri},
        "collection": {"name": collection, "dimension": DIMENSION, "primaryKey": {"type": "VARCHAR"}},
        "source": {
            "files": {
                "format": "JSONL",
                "path": str(tmp_path / "articles-*.jsonl"),
                "idField": "uuid",
                "textFields": ["text"],
            }
        },
        "keyRange": {"start": 10, "end": 110},
        "model": {"model": MODEL},
        "quality": {"sampleSize": 30},
    }
    run = run_worker(document)
    assert run.exit_code == 0, run.result
    assert run.result["records"] == {
        "read": 100,
        "embedded": 98,
        "upserted": 98,
        "skipped": {"invalidUtf8": 1, "nullText": 1},
        "truncated": 0,
    }
    assert entity_count(milvus_client, collection) == 98
    assert entity_count(milvus_client, collection, 'id >= "doc-010" and id < "doc-110"') == 98
    assert run.result["quality"]["coherence"]["min"] >= 0.99
