"""A files plan's batches are ranges of record numbers counted across the files in name order: a
batch whose range starts in a later file counts the earlier files' records from their Parquet
metadata (never reading them) and reads exactly its own records."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vector_operator.api.migrationplan import FileFormat
from vector_operator.contract.assignment import KeyRange
from vector_operator.sources.files import FileRecordsSource


@pytest.mark.parametrize(
    ("start", "end"), [(0, 50), (50, 100), (100, 150), (150, 200), (200, None), (90, 130), (None, None)]
)
def test_a_range_reads_exactly_its_records_across_files_and_row_groups(
    tmp_path: Path, start: int | None, end: int | None
) -> None:
    for number, (first, after) in enumerate([(0, 100), (100, 211)]):
        keys = list(range(first, after))
        table = pa.table({"id": keys, "text": [f"record {key}" for key in keys]})
        pq.write_table(table, tmp_path / f"part-{number}.parquet", row_group_size=40)
    source = FileRecordsSource(
        file_format=FileFormat.PARQUET,
        path=str(tmp_path / "part-*.parquet"),
        id_field="id",
        text_fields=["text"],
        fields={},
        key_range=KeyRange(start=start, end=end),
    )
    read = [row.key for page in source.pages() for row in page]
    assert read == list(range(start or 0, 211 if end is None else end))
