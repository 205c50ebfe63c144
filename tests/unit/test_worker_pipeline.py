"""The overlapped read → encode → check → write pipeline, with in-memory stand-ins for the model
and Milvus (the integration tests run it against the real ones)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from vector_operator.api.vectorcollection import ScalarField
from vector_operator.api.vectorcollection import ScalarFieldType as ScalarType
from vector_operator.sources.records import SourceRow
from vector_operator.worker.batch_optimizer import BatchOptimizer
from vector_operator.worker.field_mapping import FieldMapper
from vector_operator.worker.pipeline import CHARS_PER_TOKEN_BOUND, Pipeline, text_char_limit
from vector_operator.worker.quality import QualitySample
from vector_operator.worker.text_building import TextBuilder
from vector_operator.worker.vector_checks import VectorChecker

DIMENSION = 8


def vector_of(text: str) -> np.ndarray:
    """A deterministic unit vector per text; NaN for texts that ask for it."""
    if "poison" in text:
        return np.full(DIMENSION, np.nan, dtype=np.float32)
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


class HashEncoder:
    max_seq_length = 12

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.longest_text = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.batch_sizes.append(len(texts))
        self.longest_text = max(self.longest_text, *(len(text) for text in texts))
        return np.stack([vector_of(text) for text in texts])


class WordCounter:
    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 2 for text in texts]


class MemoryCollection:
    def __init__(self, fail_after: int | None = None) -> None:
        self.rows: dict[object, dict[str, Any]] = {}
        self.requests = 0
        self._fail_after = fail_after

    def upsert(self, rows: list[dict[str, Any]]) -> int:
        self.requests += 1
        if self._fail_after is not None and self.requests > self._fail_after:
            raise ConnectionError("Milvus went away")
        for row in rows:
            self.rows[row["id"]] = row
        return len(rows)


class ListSource:
    def __init__(self, rows: list[SourceRow], page_size: int = 100, fail_at_page: int | None = None) -> None:
        self._rows, self._page_size, self._fail_at_page = rows, page_size, fail_at_page
        self.pages_read = 0

    def pages(self) -> Iterator[list[SourceRow]]:
        for start in range(0, len(self._rows), self._page_size):
            if self._fail_at_page is not None and self.pages_read == self._fail_at_page:
                raise TimeoutError("the database timed out")
            self.pages_read += 1
            yield self._rows[start : start + self._page_size]

    def close(self) -> None:
        pass


def rows(count: int) -> list[SourceRow]:
    made = []
    for key in range(count):
        words = " ".join(f"w{(key * 7 + i) % 50}" for i in range(3 + key % 20))
        made.append(
            SourceRow(key=key, text_values={"body": f"record {key}: {words}"}, field_values={"n": key})
        )
    return made


def pipeline(
    source: ListSource, encoder: HashEncoder, collection: MemoryCollection, **bounds: int
) -> Pipeline:
    return Pipeline(
        source=source,
        text_builder=TextBuilder(columns=["body"]),
        field_mapper=FieldMapper([ScalarField(name="n", type=ScalarType.INT64)], ["n"]),
        token_counter=WordCounter(),
        encoder=encoder,
        writer=collection,
        optimizer=BatchOptimizer(bounds.get("min_size", 16), bounds.get("max_size", 64), 0.1),
        checker=VectorChecker(DIMENSION),
        sample=QualitySample(20, seed="test"),
        primary_key_field="id",
        vector_field="vector",
        max_text_chars=bounds.get("max_text_chars", 100_000),
        stop=threading.Event(),
    )


def test_every_good_record_is_written_once_with_its_own_vector() -> None:
    source_rows = rows(5000)
    source_rows[10] = SourceRow(key=10, text_values={"body": None}, field_values={"n": 10})
    source_rows[11] = SourceRow(key=11, text_values={"body": "   "}, field_values={"n": 11})
    source_rows[12] = SourceRow(key=12, text_values={"body": b"\xff"}, field_values={"n": 12})
    source_rows[13] = SourceRow(key=13, text_values={"body": "poison pill"}, field_values={"n": 13})
    source_rows[14] = SourceRow(key=14, text_values={"body": "no field"}, field_values={"n": None})
    source_rows[15] = SourceRow(key=None, text_values={"body": "no key"}, field_values={"n": 15})
    collection = MemoryCollection()
    counts = pipeline(ListSource(source_rows), HashEncoder(), collection).run()

    assert counts.read == 5000
    assert counts.embedded == 4995
    assert counts.upserted == 4994
    assert dict(counts.skipped) == {
        "nullText": 1,
        "emptyText": 1,
        "invalidUtf8": 1,
        "nonFiniteVector": 1,
        "nullField": 1,
        "nullKey": 1,
    }
    assert sorted(collection.rows) == [key for key in range(5000) if key not in range(10, 16)]
    for key, row in collection.rows.items():  # length sorting must never mix up ids and vectors
        assert np.array_equal(row["vector"], vector_of(source_rows[int(key)].text_values["body"]))
        assert row["n"] == key


@pytest.mark.parametrize("count", [5003, 5000, 4999, 100])
def test_micro_batches_stay_within_the_bounds(count: int) -> None:
    encoder = HashEncoder()
    pipeline(ListSource(rows(count)), encoder, MemoryCollection(), min_size=16, max_size=64).run()
    assert sum(encoder.batch_sizes) == count
    assert all(16 <= size <= 64 for size in encoder.batch_sizes)


def test_only_a_range_smaller_than_the_minimum_makes_a_smaller_batch() -> None:
    encoder = HashEncoder()
    pipeline(ListSource(rows(9)), encoder, MemoryCollection(), min_size=16, max_size=64).run()
    assert encoder.batch_sizes == [9]


def test_texts_longer_than_the_model_limit_are_counted() -> None:
    counts = pipeline(ListSource(rows(200)), HashEncoder(), MemoryCollection()).run()
    # record k has 2 + (3 + k % 20) words, plus 2 special tokens: above 12 tokens from k % 20 >= 6
    assert counts.truncated == sum(1 for key in range(200) if key % 20 >= 6)


def test_a_huge_text_reaches_the_model_cut_to_what_its_window_can_read() -> None:
    huge = rows(50)
    huge[7] = SourceRow(key=7, text_values={"body": "word " * 2_000_000}, field_values={"n": 7})  # 10 MB
    limit = text_char_limit(HashEncoder.max_seq_length)
    encoder, collection = HashEncoder(), MemoryCollection()
    counts = pipeline(ListSource(huge), encoder, collection, max_text_chars=limit).run()
    assert encoder.longest_text == limit  # never the 10 MB the row holds
    assert counts.upserted == 50
    assert counts.truncated >= 1
    # What the model reads of it is unchanged: its window is far smaller than the cut.
    assert limit >= HashEncoder.max_seq_length * CHARS_PER_TOKEN_BOUND


def test_a_failed_write_stops_the_pipeline_and_is_raised() -> None:
    source = ListSource(rows(100_000))
    with pytest.raises(ConnectionError, match="Milvus went away"):
        pipeline(source, HashEncoder(), MemoryCollection(fail_after=2)).run()
    assert source.pages_read < 1000  # it stopped reading long before the end


def test_a_failed_read_is_raised() -> None:
    collection = MemoryCollection()
    with pytest.raises(TimeoutError, match="the database timed out"):
        pipeline(ListSource(rows(5000), fail_at_page=30), HashEncoder(), collection).run()


def test_the_quality_sample_holds_written_records_only() -> None:
    source_rows = rows(300)
    source_rows[0] = SourceRow(key=0, text_values={"body": "poison"}, field_values={"n": 0})
    the_pipeline = pipeline(ListSource(source_rows), HashEncoder(), collection := MemoryCollection())
    the_pipeline.run()
    sampled = the_pipeline.sample.records
    assert len(sampled) == 20
    assert all(record.key in collection.rows for record in sampled)
