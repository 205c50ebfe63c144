"""The assignment: the contract the MigrationPlan controller fills and the worker reads."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from vector_operator.api.vectorcollection import MetricType
from vector_operator.contract.assignment import (
    InvalidAssignment,
    NumericBound,
    WorkerAssignment,
    key_value,
    load_assignment,
)
from vector_operator.contract.field_values import Column, Constant, parse_field_value


def assignment_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": 2,
        "batch": {"namespace": "search", "plan": "nodes-backfill", "index": 3},
        "milvus": {"uri": "http://milvus:19530", "tokenEnv": "MILVUS_TOKEN"},
        "collection": {
            "name": "nodes__v2",
            "dimension": 384,
            "metricType": "L2",
            "scalarFields": [{"name": "source_table", "type": "VARCHAR", "maxLength": 64}],
            "searchParams": {"ef": 64},
        },
        "source": {
            "sql": {
                "urlEnv": "SOURCE_URL",
                "table": "public.nodes",
                "primaryKey": "id",
                "textTemplate": "{title}\n{body}",
                "fields": {"source_table": "'nodes'"},
            }
        },
        "keyRange": {"start": 1000, "end": 2000},
        "model": {"model": "sentence-transformers/all-MiniLM-L6-v2"},
    }
    document.update(changes)
    return document


def test_reads_the_assignment_from_the_environment() -> None:
    assignment = load_assignment(None, {"VO_ASSIGNMENT": json.dumps(assignment_document())})
    assert assignment.collection.metric_type is MetricType.L2
    assert assignment.source.sql is not None
    assert assignment.source.sql.url_env == "SOURCE_URL"
    assert (assignment.key_range.start, assignment.key_range.end) == (1000, 2000)
    assert (assignment.encode.min_batch_size, assignment.encode.max_batch_size) == (1, 1024)
    assert assignment.encode.target_batch_latency_ms == 100
    assert assignment.quality.sample_size == 100


def test_a_file_wins_over_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "assignment.json"
    path.write_text(json.dumps(assignment_document(keyRange={"start": "a", "end": "m"})))
    assignment = load_assignment(path, {"VO_ASSIGNMENT": json.dumps(assignment_document())})
    assert (assignment.key_range.start, assignment.key_range.end) == ("a", "m")


def test_key_bounds_are_left_for_the_database_to_order() -> None:
    # A case-insensitive collation puts "a" before "B"; Python would not. The worker never compares.
    collated = load_assignment(
        None, {"VO_ASSIGNMENT": json.dumps(assignment_document(keyRange={"start": "a", "end": "B"}))}
    )
    assert (collated.key_range.start, collated.key_range.end) == ("a", "B")
    numeric = load_assignment(
        None,
        {
            "VO_ASSIGNMENT": json.dumps(
                assignment_document(keyRange={"start": {"numeric": "10.50"}, "end": 11})
            )
        },
    )
    assert numeric.key_range.start == NumericBound(numeric="10.50")
    assert key_value(numeric.key_range.start) == Decimal("10.50")


def test_field_values_are_columns_or_constants_never_sql() -> None:
    assert parse_field_value("category") == Column("category")
    assert parse_field_value("'nodes'") == Constant("nodes")
    assert parse_field_value("'it''s'") == Constant("it's")
    assert parse_field_value("-1.5") == Constant(-1.5)
    assert parse_field_value("42") == Constant(42)
    assert parse_field_value("true") == Constant(True)
    for sql in ("upper(title)", "1; DROP TABLE nodes", "title || body", "(SELECT secret FROM users)"):
        with pytest.raises(ValueError, match="SQL expressions are not accepted"):
            parse_field_value(sql)
    document = assignment_document()
    document["source"]["sql"]["fields"] = {"source_table": "(SELECT password FROM users)"}
    with pytest.raises(InvalidAssignment, match="SQL expressions are not accepted"):
        load_assignment(None, {"VO_ASSIGNMENT": json.dumps(document)})


def test_an_assignment_of_another_version_is_refused_with_what_to_do() -> None:
    with pytest.raises(
        InvalidAssignment, match=r"assignment version 1, but this worker reads versions 2 and 3"
    ):
        load_assignment(None, {"VO_ASSIGNMENT": json.dumps(assignment_document(version=1))})


def test_a_version_2_assignment_still_runs_and_version_3_carries_the_start_batch_size() -> None:
    old = load_assignment(None, {"VO_ASSIGNMENT": json.dumps(assignment_document(version=2))})
    assert old.start_batch_size is None
    document = assignment_document(version=3)
    document["startBatchSize"] = 96
    assert load_assignment(None, {"VO_ASSIGNMENT": json.dumps(document)}).start_batch_size == 96
    document["startBatchSize"] = 0
    with pytest.raises(InvalidAssignment, match="startBatchSize"):
        load_assignment(None, {"VO_ASSIGNMENT": json.dumps(document)})


def test_round_trips_in_camel_case() -> None:
    assignment = WorkerAssignment.model_validate(assignment_document())
    dumped = assignment.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["source"]["sql"]["textTemplate"] == "{title}\n{body}"
    assert WorkerAssignment.model_validate(dumped) == assignment


def test_no_assignment_says_how_to_give_one() -> None:
    with pytest.raises(InvalidAssignment, match=r"set \$VO_ASSIGNMENT \(JSON\) or pass --assignment FILE"):
        load_assignment(None, {})


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"keyRange": {"start": {"numeric": "1e5"}}}, "keyRange.start"),
        ({"encode": {"minBatchSize": 64, "maxBatchSize": 16}}, "must not exceed maxBatchSize"),
        ({"milvus": {"uri": "http://m", "tokenEnv": "not a name"}}, "milvus.tokenEnv"),
        ({"model": {"model": "m", "truncateDim": 256}}, "must equal collection.dimension"),
        ({"source": {}}, "exactly one of sql and files"),
        ({"colection": {}}, "colection: Extra inputs are not permitted"),
    ],
)
def test_invalid_assignments_say_what_is_wrong(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidAssignment, match=complaint):
        load_assignment(None, {"VO_ASSIGNMENT": json.dumps(assignment_document(**changes))})


def test_sql_source_needs_exactly_one_way_to_build_text() -> None:
    document = assignment_document()
    document["source"]["sql"]["textColumns"] = ["title"]
    with pytest.raises(InvalidAssignment, match="exactly one of the text columns and textTemplate"):
        load_assignment(None, {"VO_ASSIGNMENT": json.dumps(document)})


def test_mapped_fields_must_be_collection_fields() -> None:
    document = assignment_document()
    document["source"]["sql"]["fields"] = {"category": "category"}
    with pytest.raises(InvalidAssignment, match=r"source fields \['category'\] are not scalar fields"):
        load_assignment(None, {"VO_ASSIGNMENT": json.dumps(document)})


def test_files_sources_count_records_with_integers() -> None:
    files = {"files": {"format": "JSONL", "path": "/data/*.jsonl", "idField": "id", "textFields": ["text"]}}
    with pytest.raises(InvalidAssignment, match="keyRange bounds must be integers"):
        load_assignment(
            None, {"VO_ASSIGNMENT": json.dumps(assignment_document(source=files, keyRange={"end": "x"}))}
        )
    assignment = load_assignment(
        None,
        {"VO_ASSIGNMENT": json.dumps(assignment_document(source=files, keyRange={"start": 0, "end": 10}))},
    )
    assert assignment.source.files is not None


def test_not_json_is_reported_with_its_position() -> None:
    with pytest.raises(InvalidAssignment, match=r"\$VO_ASSIGNMENT is not JSON: .* at line 1"):
        load_assignment(None, {"VO_ASSIGNMENT": "{not json"})
