"""The sync assignment names its soft-delete column once (in the sync settings, the source, or
both alike) and is refused, with what to fix, when it cannot work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vector_operator.contract.sync import InvalidSyncAssignment, SyncAssignment, load_sync_assignment


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": 1,
        "plan": {"namespace": "ns", "name": "plan", "uid": "uid-1"},
        "milvus": {"uri": "http://milvus:19530"},
        "collection": {"name": "articles__v1", "dimension": 384,
                       "scalarFields": [{"name": "category", "type": "VARCHAR", "maxLength": 16}]},
        "source": {"urlEnv": "SOURCE_DATABASE_URL", "table": "articles", "primaryKey": "id",
                   "textColumns": ["title", "body"], "fields": {"category": "category"}},
        "model": {"model": "sentence-transformers/all-MiniLM-L6-v2"},
        "sync": {"continuous": True, "intervalS": 10},
    }  # fmt: skip
    for section, value in changes.items():
        base[section] = {**base.get(section, {}), **value}
    return base


@pytest.mark.parametrize(
    ("sync", "source", "column"),
    [({}, {}, None), ({"softDeleteColumn": "deleted_at"}, {}, "deleted_at"),
     ({}, {"softDeleteColumn": "deleted_at"}, "deleted_at"),
     ({"softDeleteColumn": "deleted_at"}, {"softDeleteColumn": "deleted_at"}, "deleted_at")],
)  # fmt: skip
def test_the_soft_delete_column_may_be_named_by_either(
    sync: dict[str, Any], source: dict[str, Any], column: str | None
) -> None:
    assert SyncAssignment.model_validate(document(sync=sync, source=source)).soft_delete_column == column


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"sync": {"softDeleteColumn": "a"}, "source": {"softDeleteColumn": "b"}},
            "must name the same column",
        ),
        ({"source": {"fields": {"colour": "colour"}}}, "source fields ['colour'] are not scalar fields"),
        ({"model": {"truncateDim": 128}}, "model.truncateDim (128) must equal collection.dimension (384)"),
        ({"encode": {"minBatchSize": 64, "maxBatchSize": 8}}, "must not exceed maxBatchSize"),
    ],
)
def test_an_assignment_that_cannot_work_is_refused_with_what_to_fix(
    changes: dict[str, Any], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "assignment.json"
    path.write_text(json.dumps(document(**changes)), encoding="utf-8")
    with pytest.raises(InvalidSyncAssignment, match="is not a valid sync assignment") as refused:
        load_sync_assignment(path, {})
    assert message in str(refused.value)
