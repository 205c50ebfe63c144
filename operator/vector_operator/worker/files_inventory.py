"""Counting a files source's records before a plan is made of them: the files matching its path
(local or s3://), in name order, and the records they hold, counted as the worker's file reader
numbers them (:mod:`vector_operator.sources.files`), so that the plan's record ranges cover every
record once.

Parquet files are counted from their metadata and their id column; CSV and JSONL files are
streamed block by block through pyarrow's readers. Every record's key is checked to be unique
across all the files, as an SQL plan checks its primary key: two records with one key would
overwrite each other in Milvus (and fall into different batches), so such files are refused
before any batch runs. The keys are held as one Arrow column (8 bytes a record for integers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from vector_operator.api.migrationplan import FileFormat
from vector_operator.contract.assignment import FileSource
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.object_store import as_written, glob_files, open_store

log = logging.getLogger(__name__)

BLOCK_SIZE = 4 << 20
"""Bytes per CSV/JSONL block, as the worker's reader uses (one record must fit in a block)."""


@dataclass(frozen=True)
class FilesCount:
    records: int
    files: int
    bytes: int
    seconds: float


MAX_KEYS_SHOWN = 5


def _parquet_keys(filesystem: pa_fs.FileSystem, path: str, id_field: str) -> tuple[int, list[pa.Array]]:
    with filesystem.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        if id_field not in parquet.schema_arrow.names:
            return int(parquet.metadata.num_rows), []
        return int(parquet.metadata.num_rows), parquet.read(columns=[id_field]).column(0).chunks


def _csv_keys(filesystem: pa_fs.FileSystem, path: str, id_field: str) -> tuple[int, list[pa.Array]]:
    with filesystem.open_input_stream(path) as stream:
        reader = pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(block_size=BLOCK_SIZE),
            convert_options=pa_csv.ConvertOptions(
                include_columns=[id_field], column_types={id_field: pa.binary()}, check_utf8=False
            ),
        )
        batches = list(reader)
    return sum(batch.num_rows for batch in batches), [batch.column(0) for batch in batches]


def _jsonl_keys(filesystem: pa_fs.FileSystem, path: str, id_field: str) -> tuple[int, list[pa.Array]]:
    records, keys = 0, []
    with filesystem.open_input_stream(path) as stream:
        reader = pa_json.open_json(stream, read_options=pa_json.ReadOptions(block_size=BLOCK_SIZE))
        for batch in reader:
            records += batch.num_rows
            if (index := batch.schema.get_field_index(id_field)) >= 0:
                keys.append(batch.column(index))
    return records, keys


def repeated_keys(keys: list[pa.Array]) -> tuple[int, list[object]]:
    """How many keys occur more than once among ``keys`` (compared as text: 7 and "7" are one
    Milvus key), and a few of them. Records without a key are not counted."""
    if not keys:
        return 0, []
    texts = pa.chunked_array([pc.cast(chunk, pa.string()) for chunk in keys], type=pa.string())
    counts = pc.value_counts(pc.drop_null(texts))
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    return len(repeated), repeated.field("values")[:MAX_KEYS_SHOWN].to_pylist()


def count_file_records(source: FileSource, environ: Mapping[str, str]) -> FilesCount:
    """The records, files and bytes of the files matching ``source.path``. SourceMisconfigured when
    no file matches or a file cannot be parsed as its format (naming it); SourceUnavailable when
    the store cannot be read."""
    started = time.monotonic()
    filesystem, pattern = open_store(source.path, source.s3, environ)
    try:
        paths = glob_files(filesystem, pattern)
        if not paths:
            raise SourceMisconfigured(
                f"no file matches {source.path} (is the volume mounted, or the bucket and prefix right?)"
            )
        records = size = 0
        keys: list[pa.Array] = []
        read_keys = {FileFormat.PARQUET: _parquet_keys, FileFormat.CSV: _csv_keys}.get(
            source.format, _jsonl_keys
        )
        for path in paths:
            try:
                found, file_keys = read_keys(filesystem, path, source.id_field)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise SourceMisconfigured(
                    f"{as_written(source.path, path)} is not readable as {source.format}: {error}"
                ) from None
            size += filesystem.get_file_info(path).size or 0
            records += found
            keys += file_keys
            log.info("%s: %d records", as_written(source.path, path), found)
    except OSError as error:
        raise SourceUnavailable(f"cannot read the files of {source.path}: {error}") from None
    try:
        repeated, examples = repeated_keys(keys)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise SourceMisconfigured(
            f"the {source.id_field} values of {source.path} are not keys: {error}"
        ) from None
    if repeated:
        shown = ", ".join(repr(key) for key in examples)
        raise SourceMisconfigured(
            f"{repeated} {source.id_field} values occur in more than one record of {source.path}"
            f" (e.g. {shown}): every record needs a key of its own, or the records overwrite each other"
            " in Milvus"
        )
    return FilesCount(records, len(paths), size, time.monotonic() - started)
