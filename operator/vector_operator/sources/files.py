"""Records from JSONL, Parquet or CSV files through pyarrow's streaming readers.

A path may be a glob; files are read in name order and records are numbered from 0 across them,
which is what a files plan's key range counts. Parquet files and row groups outside the range
are skipped from their metadata without reading them; CSV and JSONL are streamed block by block.
Text columns are read as raw bytes, so that text which is not valid UTF-8 skips its record with
a reason instead of failing the whole block.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from vector_operator.api.migrationplan import FileFormat
from vector_operator.contract.assignment import KeyRange
from vector_operator.contract.field_values import Column, parse_field_value
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.records import SourceRow, milvus_key

BLOCK_SIZE = 4 << 20
"""Bytes per CSV/JSONL block (one record must fit in a block)."""
PARQUET_BATCH_ROWS = 1000


class FileRecordsSource:
    """Reads records [start, end) of the files matching ``path``."""

    def __init__(
        self,
        *,
        file_format: FileFormat,
        path: str,
        id_field: str,
        text_fields: Sequence[str],
        fields: Mapping[str, str],
        key_range: KeyRange,
    ) -> None:
        self._format = file_format
        self._path = path
        self._id_field = id_field
        self._text_fields = tuple(text_fields)
        self._fields = {name: parse_field_value(value) for name, value in fields.items()}
        start, end = key_range.start, key_range.end
        if not isinstance(start, int | None) or not isinstance(end, int | None):
            raise SourceMisconfigured("a files source counts records: the key range must be integers")
        self._start = start or 0
        self._end = end

    def close(self) -> None:
        """Nothing stays open between pages."""

    @property
    def _columns(self) -> list[str]:
        read = [value.name for value in self._fields.values() if isinstance(value, Column)]
        return list(dict.fromkeys([self._id_field, *self._text_fields, *read]))

    def _files(self) -> list[Path]:
        matches = sorted(glob.glob(self._path)) if any(char in self._path for char in "*?[") else [self._path]
        files = [Path(match) for match in matches if Path(match).is_file()]
        if not files:
            raise SourceMisconfigured(f"no file matches {self._path} in the worker (is the volume mounted?)")
        return files

    def pages(self) -> Iterator[list[SourceRow]]:
        number = 0  # the record number of the next batch's first record
        for file in self._files():
            try:
                for batch, first in self._batches(file, number):
                    number = first + batch.num_rows
                    lo = max(self._start - first, 0)
                    hi = batch.num_rows if self._end is None else min(batch.num_rows, self._end - first)
                    if lo < hi:
                        yield self._rows(batch.slice(lo, hi - lo))
                    if self._end is not None and number >= self._end:
                        return
            except pa.ArrowInvalid as error:
                raise SourceMisconfigured(f"{file}: {error}") from None
            except OSError as error:
                raise SourceUnavailable(f"{file}: {error}") from None

    def _batches(self, file: Path, first: int) -> Iterator[tuple[pa.RecordBatch, int]]:
        """(batch, number of its first record) for ``file``, whose first record is ``first``."""
        if self._format is FileFormat.PARQUET:
            yield from self._parquet_batches(file, first)
            return
        reader = self._open_csv(file) if self._format is FileFormat.CSV else self._open_jsonl(file)
        for batch in reader:
            yield batch, first
            first += batch.num_rows

    def _parquet_batches(self, file: Path, first: int) -> Iterator[tuple[pa.RecordBatch, int]]:
        parquet = pq.ParquetFile(file)
        names = set(parquet.schema_arrow.names)
        if missing := [column for column in self._columns if column not in names]:
            raise SourceMisconfigured(f"{file} has no column {', '.join(missing)}")
        for group in range(parquet.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            wanted = first + rows > self._start and (self._end is None or first < self._end)
            if wanted:
                offset = first
                for batch in parquet.iter_batches(
                    batch_size=PARQUET_BATCH_ROWS, row_groups=[group], columns=self._columns
                ):
                    yield batch, offset
                    offset += batch.num_rows
            first += rows
            if self._end is not None and first >= self._end:
                return

    def _open_csv(self, file: Path) -> pa.RecordBatchReader:
        return pa_csv.open_csv(
            file,
            read_options=pa_csv.ReadOptions(block_size=BLOCK_SIZE),
            convert_options=pa_csv.ConvertOptions(
                include_columns=self._columns,
                column_types={column: pa.binary() for column in self._text_fields},
                check_utf8=False,
            ),
        )

    def _open_jsonl(self, file: Path) -> pa.RecordBatchReader:
        return pa_json.open_json(
            file,
            read_options=pa_json.ReadOptions(block_size=BLOCK_SIZE),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema([(column, pa.binary()) for column in self._text_fields]),
                unexpected_field_behavior="infer",
            ),
        )

    def _rows(self, batch: pa.RecordBatch) -> list[SourceRow]:
        def column(name: str) -> list[object]:
            index = batch.schema.get_field_index(name)
            return batch.column(index).to_pylist() if index >= 0 else [None] * batch.num_rows

        keys = column(self._id_field)
        texts = {name: column(name) for name in self._text_fields}
        fields = {
            field: column(value.name) if isinstance(value, Column) else [value.value] * batch.num_rows
            for field, value in self._fields.items()
        }
        return [
            SourceRow(
                key=milvus_key(keys[row]),
                text_values={name: values[row] for name, values in texts.items()},
                field_values={name: values[row] for name, values in fields.items()},
            )
            for row in range(batch.num_rows)
        ]
