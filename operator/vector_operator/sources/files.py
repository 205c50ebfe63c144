"""Records from JSONL, Parquet or CSV files through pyarrow's streaming readers, on a local path
(a mounted volume, the image) or in an S3-compatible bucket alike (:mod:`.object_store`).

A path may be a glob (in its file name); files are read in name order and records are numbered
from 0 across them, which is what a files plan's key range counts. Parquet files and row groups
outside the range are skipped from their metadata without reading them; CSV and JSONL are streamed
block by block (compressed ones too, by their extension). Text columns are read as raw bytes, so
that text which is not valid UTF-8 skips its record with a reason instead of failing the block.

With a vector column each row also carries its precomputed vector (:mod:`.vector_column`). With
``keep_content_hash`` a ``content_hash`` column, where the files have one (a backup's do), is
passed through in the row's field values, so that a restore writes back the hashes it saved.

Errors name the file and never a credential: a file that cannot be read as described (not the
format, a missing column) is :class:`SourceMisconfigured`; a store that cannot be reached or read
(I/O, network) is :class:`SourceUnavailable`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from vector_operator.api.migrationplan import FileFormat
from vector_operator.contract.assignment import KeyRange, S3Access
from vector_operator.contract.content_hash import CONTENT_HASH_FIELD
from vector_operator.contract.field_values import Column, parse_field_value
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.object_store import S3_SCHEME, as_written, glob_files, open_store
from vector_operator.sources.records import SourceRow, milvus_key
from vector_operator.sources.vector_column import NotVectors, column_vectors

BLOCK_SIZE = 4 << 20
"""Bytes per CSV/JSONL block (one record must fit in a block)."""
PARQUET_BATCH_ROWS = 1000
_REFUSED = (pa.ArrowInvalid, pa.ArrowKeyError, pa.ArrowTypeError, pa.ArrowNotImplementedError)
"""What pyarrow raises for a file that is not what the source describes."""
_STORE_REFUSALS = ("ACCESS_DENIED", "SIGNATURE_DOES_NOT_MATCH", "INVALID_ACCESS_KEY_ID", "NO_SUCH_BUCKET")
"""S3 errors, as pyarrow names them, that retrying does not fix: wrong credentials or bucket."""


class FileRecordsSource:
    """Reads records [start, end) of the files matching ``path`` (local, or s3:// with ``s3``)."""

    def __init__(
        self,
        *,
        file_format: FileFormat,
        path: str,
        id_field: str,
        text_fields: Sequence[str],
        fields: Mapping[str, str],
        key_range: KeyRange,
        vector_field: str | None = None,
        s3: S3Access | None = None,
        environ: Mapping[str, str] | None = None,
        keep_content_hash: bool = False,
    ) -> None:
        """``vector_field``: the column holding each record's vector (yielded as
        :attr:`SourceRow.vector`). ``environ``: where the S3 credentials named in ``s3`` are read.
        ``keep_content_hash``: pass a ``content_hash`` column through (when the files have one)."""
        self._format = file_format
        self._path = path
        self._id_field = id_field
        self._text_fields = tuple(text_fields)
        self._fields = {name: parse_field_value(value) for name, value in fields.items()}
        self._vector_field = vector_field
        self._s3 = s3
        self._environ: Mapping[str, str] = environ if environ is not None else {}
        self._keep_content_hash = keep_content_hash
        start, end = key_range.start, key_range.end
        if not isinstance(start, int | None) or not isinstance(end, int | None):
            raise SourceMisconfigured("a files source counts records: the key range must be integers")
        self._start = start or 0
        self._end = end

    def close(self) -> None:
        """Nothing stays open between pages."""

    @property
    def _columns(self) -> list[str]:
        """The columns every file must have."""
        read = [value.name for value in self._fields.values() if isinstance(value, Column)]
        vector = [self._vector_field] if self._vector_field is not None else []
        return list(dict.fromkeys([self._id_field, *self._text_fields, *read, *vector]))

    @property
    def _optional_columns(self) -> list[str]:
        """The columns read where a file has them."""
        return [CONTENT_HASH_FIELD] if self._keep_content_hash else []

    # -- where the files are ----------------------------------------------------------------

    def _scrubbed(self, message: object) -> str:
        """``message`` without the S3 credentials, should a library ever quote them."""
        text = str(message)
        if self._s3 is not None:
            for name in (self._s3.access_key_env, self._s3.secret_key_env):
                if secret := self._environ.get(name):
                    text = text.replace(secret, "***")
        return text

    def _store_error(self, what: str, error: OSError) -> Exception:
        """The source's error for an ``error`` of the store while reading ``what``: the store
        refusing the credentials or the bucket is a misconfiguration, anything else (network,
        I/O, a server error) may pass."""
        message = f"{what}: {self._scrubbed(error)}"
        if any(f"AWS Error {code}" in str(error) for code in _STORE_REFUSALS):
            return SourceMisconfigured(
                f"{message} (are the credentials in the Secret that s3 names right, and may they read "
                "the bucket?)"
            )
        return SourceUnavailable(message)

    def _files(self) -> tuple[pa_fs.FileSystem, list[str]]:
        filesystem, pattern = open_store(self._path, self._s3, self._environ)
        try:
            files = glob_files(filesystem, pattern)
        except _REFUSED as error:
            raise SourceMisconfigured(f"{self._path}: {self._scrubbed(error)}") from None
        except OSError as error:
            raise self._store_error(f"cannot list {self._path}", error) from None
        if not files:
            where = (
                "in the bucket"
                if self._path.startswith(S3_SCHEME)
                else "in the worker (is the volume mounted?)"
            )
            raise SourceMisconfigured(f"no file matches {self._path} {where}")
        return filesystem, files

    # -- reading ----------------------------------------------------------------------------

    def pages(self) -> Iterator[list[SourceRow]]:
        filesystem, files = self._files()
        number = 0  # the record number of the file's first record
        for file in files:
            try:
                number = yield from self._file_pages(filesystem, file, number)
            except NotVectors as error:
                raise SourceMisconfigured(
                    f"{as_written(self._path, file)}: column {self._vector_field} cannot be vectors: {error}"
                ) from None
            except _REFUSED as error:
                raise SourceMisconfigured(
                    f"{as_written(self._path, file)}: {self._scrubbed(error)}"
                ) from None
            except OSError as error:
                raise self._store_error(as_written(self._path, file), error) from None
            if self._end is not None and number >= self._end:
                return

    def _file_pages(
        self, filesystem: pa_fs.FileSystem, file: str, first: int
    ) -> Generator[list[SourceRow], None, int]:
        """The pages of ``file`` (whose first record is number ``first``) within the range; returns
        the number of the record after the file's last (or after the range's end): a file whose
        row groups all lie before the range is counted from its metadata, never read."""
        batches = self._batches(filesystem, file, first)
        while True:
            try:
                batch, start = next(batches)
            except StopIteration as done:
                after: int = done.value
                return after
            lo = max(self._start - start, 0)
            hi = batch.num_rows if self._end is None else min(batch.num_rows, self._end - start)
            if lo < hi:
                yield self._rows(batch.slice(lo, hi - lo))
            after_batch: int = start + batch.num_rows
            if self._end is not None and after_batch >= self._end:
                return after_batch

    def _batches(
        self, filesystem: pa_fs.FileSystem, file: str, first: int
    ) -> Generator[tuple[pa.RecordBatch, int], None, int]:
        """(batch, number of its first record) for ``file``, whose first record is ``first``;
        returns the number of the record after the last one it covered."""
        if self._format is FileFormat.PARQUET:
            return (yield from self._parquet_batches(filesystem, file, first))
        with filesystem.open_input_stream(file) as stream:
            reader = (
                self._open_csv(file, stream) if self._format is FileFormat.CSV else self._open_jsonl(stream)
            )
            for batch in reader:
                yield batch, first
                first += batch.num_rows
        return first

    def _parquet_batches(
        self, filesystem: pa_fs.FileSystem, file: str, first: int
    ) -> Generator[tuple[pa.RecordBatch, int], None, int]:
        with filesystem.open_input_file(file) as handle:
            parquet = pq.ParquetFile(handle, pre_buffer=True)  # coalesced reads: fewer S3 requests
            names = set(parquet.schema_arrow.names)
            self._check_columns(file, names)
            columns = self._columns + [column for column in self._optional_columns if column in names]
            for group in range(parquet.num_row_groups):
                rows = parquet.metadata.row_group(group).num_rows
                wanted = first + rows > self._start and (self._end is None or first < self._end)
                if wanted:
                    offset = first
                    for batch in parquet.iter_batches(
                        batch_size=PARQUET_BATCH_ROWS, row_groups=[group], columns=columns
                    ):
                        yield batch, offset
                        offset += batch.num_rows
                first += rows
                if self._end is not None and first >= self._end:
                    return first
        return first

    def _check_columns(self, file: str, names: set[str]) -> None:
        if missing := [column for column in self._columns if column not in names]:
            raise SourceMisconfigured(f"{as_written(self._path, file)} has no column {', '.join(missing)}")

    def _open_csv(self, file: str, stream: pa.NativeFile) -> pa.RecordBatchReader:
        types: dict[str, pa.DataType] = {column: pa.binary() for column in self._text_fields}
        if self._vector_field is not None:
            types[self._vector_field] = pa.string()  # CSV has no lists: "[0.1, 0.2, ...]"
        # A CSV file has no schema to consult: where an optional column is wanted, every column is
        # read (and the wanted ones picked), else only the wanted ones.
        include = [] if self._optional_columns else self._columns
        reader = pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(block_size=BLOCK_SIZE),
            convert_options=pa_csv.ConvertOptions(
                include_columns=include, column_types=types, check_utf8=False
            ),
        )
        if not include:
            self._check_columns(file, set(reader.schema.names))
        return reader

    def _open_jsonl(self, stream: pa.NativeFile) -> pa.RecordBatchReader:
        schema = [(column, pa.binary()) for column in self._text_fields]
        if self._vector_field is not None:
            schema.append((self._vector_field, pa.list_(pa.float32())))
        return pa_json.open_json(
            stream,
            read_options=pa_json.ReadOptions(block_size=BLOCK_SIZE),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema(schema), unexpected_field_behavior="infer"
            ),
        )

    def _rows(self, batch: pa.RecordBatch) -> list[SourceRow]:
        def column(name: str) -> list[object]:
            index = batch.schema.get_field_index(name)
            return batch.column(index).to_pylist() if index >= 0 else [None] * batch.num_rows

        keys = column(self._id_field)
        texts = {name: column(name) for name in self._text_fields}
        fields: dict[str, list[object]] = {
            field: column(value.name) if isinstance(value, Column) else [value.value] * batch.num_rows
            for field, value in self._fields.items()
        }
        for name in self._optional_columns:
            if batch.schema.get_field_index(name) >= 0:
                fields[name] = [_hash_value(value) for value in column(name)]
        vectors: Sequence[object] = [None] * batch.num_rows
        if self._vector_field is not None:
            index = batch.schema.get_field_index(self._vector_field)
            if index >= 0:
                vectors = column_vectors(batch.column(index))
        return [
            SourceRow(
                key=milvus_key(keys[row]),
                text_values={name: values[row] for name, values in texts.items()},
                field_values={name: values[row] for name, values in fields.items()},
                vector=vectors[row],
            )
            for row in range(batch.num_rows)
        ]


def _hash_value(value: object) -> int | None:
    """A content hash as the collection stores it (a signed 64-bit integer), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        return None
    return value
