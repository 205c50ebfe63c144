"""Which imported records are written: every check in order, each failure counted by its reason,
the first of two records with one key kept, vectors of the wrong length or norm refused, the
text kept only for the quality sample, a passed-through content hash kept."""

from __future__ import annotations

import numpy as np
import pytest

from vector_operator.api.vectorcollection import PrimaryKeySpec, ScalarField
from vector_operator.contract.content_hash import CONTENT_HASH_FIELD
from vector_operator.contract.result import SkipReason
from vector_operator.sources.records import Key, SourceRow
from vector_operator.worker.field_mapping import FieldMapper
from vector_operator.worker.text_building import TextBuilder
from vector_operator.worker.vector_checks import VectorChecker
from vector_operator.worker.vector_import import upsert_rows_per_request
from vector_operator.worker.vector_screening import ImportScreen, not_normalized

DIMENSION = 8


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def screen(*, normalize: bool = True, text: bool = False) -> ImportScreen:
    fields = [ScalarField.model_validate({"name": "lang", "type": "VARCHAR", "maxLength": 4})]
    return ImportScreen(
        field_mapper=FieldMapper(fields, ["lang"], PrimaryKeySpec()),
        checker=VectorChecker(DIMENSION),
        normalize=normalize,
        text_builder=TextBuilder(columns=["body"]) if text else None,
        max_text_chars=10,
    )


def row(
    key: Key | None, vector: object, lang: object = "en", body: object = b"some text", **extra: object
) -> SourceRow:
    return SourceRow(
        key=key,
        text_values={"body": body},
        field_values={"lang": lang, **extra},
        vector=vector,
    )


def test_not_normalized_leaves_nan_inf_and_zero_vectors_to_the_checker() -> None:
    vectors = np.stack([unit(0), 2 * unit(1), unit(2) * (1 + 5e-4), np.zeros(DIMENSION), unit(3)]).astype(
        np.float32
    )
    vectors[4, 0] = np.nan
    assert not_normalized(vectors).tolist() == [False, True, False, False, False]
    assert not_normalized(vectors, tolerance=1e-4).tolist() == [False, True, True, False, False]


def test_every_check_counts_its_reason_and_good_records_pass_in_order() -> None:
    nan = unit(4)
    nan[2] = np.nan
    rows = [
        row(1, unit(1)),
        row(None, unit(2)),  # nullKey
        row("not-an-int", unit(3)),  # invalidKey
        row(1, unit(5)),  # duplicateKey: the first record 1 stays
        row(2, unit(6), lang=None),  # nullField
        row(3, unit(7), lang="toolong"),  # fieldTooLong
        row(4, None),  # nullVector
        row(5, unit(8)[:-1]),  # wrongDimension
        row(6, 3 * unit(9)),  # notNormalized
        row(7, nan),  # nonFiniteVector
        row(8, np.zeros(DIMENSION, np.float32)),  # zeroVector
        row(9, unit(10)),
    ]
    checked = screen()
    accepted = checked.screen(rows)
    assert [record.key for record in accepted] == [1, 9]
    assert accepted[0].vector.tobytes() == unit(1).tobytes()
    assert accepted[0].fields == {"lang": "en"}
    assert checked.counts.read == 12
    assert dict(checked.counts.skipped) == {
        SkipReason.NULL_KEY: 1,
        SkipReason.INVALID_KEY: 1,
        SkipReason.DUPLICATE_KEY: 1,
        SkipReason.NULL_FIELD: 1,
        SkipReason.FIELD_TOO_LONG: 1,
        SkipReason.NULL_VECTOR: 1,
        SkipReason.WRONG_DIMENSION: 1,
        SkipReason.NOT_NORMALIZED: 1,
        SkipReason.NON_FINITE_VECTOR: 1,
        SkipReason.ZERO_VECTOR: 1,
    }


def test_keys_are_remembered_across_pages_even_when_the_first_record_was_refused() -> None:
    checked = screen()
    first = checked.screen([row(1, None), row(2, unit(1))])  # 1: nullVector
    assert [record.key for record in first] == [2]
    second = checked.screen([row(1, unit(2)), row(2, unit(3)), row(3, unit(4))])
    assert [record.key for record in second] == [3]
    assert checked.counts.skipped[SkipReason.DUPLICATE_KEY] == 2


def test_without_normalize_any_length_is_written() -> None:
    accepted = screen(normalize=False).screen([row(1, 3 * unit(1)), row(2, unit(2))])
    assert [record.key for record in accepted] == [1, 2]


def test_text_goes_with_the_record_for_the_sample_and_its_absence_refuses_nothing() -> None:
    accepted = screen(text=True).screen(
        [
            row(1, unit(1), body=b"a text longer than ten characters"),
            row(2, unit(2), body=None),
            row(3, unit(3), body=b"\xff"),
        ]
    )
    assert [(record.key, record.text) for record in accepted] == [(1, "a text lon"), (2, None), (3, None)]


def test_identical_vectors_of_different_records_are_anomalies_not_refusals() -> None:
    checked = screen()
    accepted = checked.screen([row(1, unit(1)), row(2, unit(1))])
    assert len(accepted) == 2
    assert checked.counts.duplicate_vectors == 1


@pytest.mark.parametrize(
    ("value", "kept"), [(-(2**63), -(2**63)), (42, 42), (2**63, None), (True, None), ("7", None)]
)
def test_a_passed_through_content_hash_is_kept_when_it_fits_int64(value: object, kept: int | None) -> None:
    (record,) = screen().screen([row(1, unit(1), **{CONTENT_HASH_FIELD: value})])
    assert record.content_hash == kept


def test_upsert_requests_hold_at_most_1000_rows_and_about_16_mib() -> None:
    assert upsert_rows_per_request(384) == 1000
    assert upsert_rows_per_request(8192) == 512
    assert upsert_rows_per_request(10**9) == 1
