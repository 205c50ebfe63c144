"""The batch pipeline writes each record's content hash (of the text as the model reads it: after
the character cut) when it is given the model's fingerprint, and no hash field without one (a
collection created before the field existed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from vector_operator.api.vectorcollection import EmbeddingSpec, ScalarField
from vector_operator.api.vectorcollection import ScalarFieldType as ScalarType
from vector_operator.contract.content_hash import CONTENT_HASH_FIELD, content_hash, model_fingerprint
from vector_operator.sources.records import SourceRow
from vector_operator.worker.batch_optimizer import BatchOptimizer
from vector_operator.worker.field_mapping import FieldMapper
from vector_operator.worker.pipeline import Pipeline
from vector_operator.worker.quality import QualitySample
from vector_operator.worker.text_building import TextBuilder
from vector_operator.worker.vector_checks import VectorChecker

DIMENSION = 4


class Encoder:
    max_seq_length = 64

    def encode(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        return np.array([[len(text), 1.0, 2.0, 3.0] for text in texts], dtype=np.float32)


class Tokens:
    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) for text in texts]


class Written:
    def __init__(self) -> None:
        self.rows: dict[object, dict[str, Any]] = {}

    def upsert(self, rows: list[dict[str, Any]]) -> int:
        self.rows.update((row["id"], row) for row in rows)
        return len(rows)


class Rows:
    def pages(self) -> Iterator[list[SourceRow]]:
        yield from ([source_row(key) for key in range(start, start + 50)] for start in range(0, 300, 50))

    def close(self) -> None:
        pass


def source_row(key: int) -> SourceRow:
    return SourceRow(key=key, text_values={"body": f"record {key} of the table"}, field_values={"n": key})


FINGERPRINT = model_fingerprint(EmbeddingSpec(model="sentence-transformers/all-MiniLM-L6-v2"))
CUT = 14


def run(fingerprint: bytes | None) -> Written:
    collection = Written()
    Pipeline(
        source=Rows(),
        text_builder=TextBuilder(columns=["body"]),
        field_mapper=FieldMapper([ScalarField(name="n", type=ScalarType.INT64)], ["n"]),
        token_counter=Tokens(),
        encoder=Encoder(),
        writer=collection,
        optimizer=BatchOptimizer(4, 32, 0.1),
        checker=VectorChecker(DIMENSION),
        sample=QualitySample(5, seed="test"),
        primary_key_field="id",
        vector_field="vector",
        max_text_chars=CUT,
        stop=threading.Event(),
        content_fingerprint=fingerprint,
    ).run()
    return collection


def test_every_record_carries_the_hash_of_the_text_the_model_read() -> None:
    written = run(FINGERPRINT)
    assert len(written.rows) == 300
    for key in range(300):
        text = f"record {key} of the table"[:CUT]
        assert written.rows[key][CONTENT_HASH_FIELD] == content_hash(text, FINGERPRINT)
    assert written.rows[7][CONTENT_HASH_FIELD] != content_hash("record 7 of the table", FINGERPRINT)


def test_without_a_fingerprint_no_hash_is_written() -> None:
    assert all(CONTENT_HASH_FIELD not in row for row in run(None).rows.values())
