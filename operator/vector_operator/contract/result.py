"""The worker's result: a small versioned JSON document in the pod's termination message.

The MigrationPlan controller reads it from the Job pod's ``state.terminated.message``. Kubernetes
keeps at most 4096 bytes of it, so :meth:`WorkerResult.to_termination_message` always fits: it
shortens lists and messages, never the counts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

RESULT_VERSION: Literal[1] = 1
TERMINATION_MESSAGE_LIMIT = 4096
"""Bytes of a termination message the kubelet keeps."""
MAX_MESSAGE_CHARS = 1024


class ResultModel(BaseModel):
    """camelCase on the wire. Unknown keys are ignored: an operator must read the result of a newer
    worker image (fields are only ever added within a version)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class SkipReason(StrEnum):
    """Why a record was read but not written. The values are the keys of the result's
    ``records.skipped`` map (and of a plan's ``progress.skippedByReason``)."""

    NULL_TEXT = "nullText"
    """Every column the text is built from is NULL (or missing)."""
    EMPTY_TEXT = "emptyText"
    """The built text is empty or whitespace only."""
    INVALID_UTF8 = "invalidUtf8"
    """A text column holds bytes that are not valid UTF-8."""
    TEMPLATE_ERROR = "templateError"
    """The text template could not be applied to the row (e.g. a numeric format on a string)."""
    NULL_KEY = "nullKey"
    """The record has no primary key value (SQL sources: counted when the plan is made, as the
    batches select only rows with a key)."""
    INVALID_KEY = "invalidKey"
    """The key does not fit the collection's key type (not an integer for INT64, longer than
    maxLength for VARCHAR)."""
    NULL_FIELD = "nullField"
    """A scalar field's value is NULL (or missing); the collection's fields take no NULL."""
    INVALID_FIELD = "invalidField"
    """A scalar field's value does not fit the collection's field type."""
    FIELD_TOO_LONG = "fieldTooLong"
    """A VARCHAR field's value is longer than the field's maxLength (in UTF-8 bytes)."""
    DUPLICATE_KEY = "duplicateKey"
    """Another record with the same primary key came in the same write (files: the last wins) or
    the same batch (imported vectors: the first is kept)."""
    NON_FINITE_VECTOR = "nonFiniteVector"
    """The model produced NaN or infinite components."""
    ZERO_VECTOR = "zeroVector"
    """The model produced an all-zero vector (no direction: no similarity is defined)."""
    WRONG_DIMENSION = "wrongDimension"
    """The vector's dimension differs from the collection's."""
    NULL_VECTOR = "nullVector"
    """An imported record has no vector (files with vectorField)."""
    NOT_NORMALIZED = "notNormalized"
    """An imported vector's length is not 1 although the collection's model normalizes (its vectors
    would not be comparable with the model's)."""


class Status(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Reason(StrEnum):
    """Why the worker ended as it did (CamelCase, as Kubernetes condition reasons)."""

    COMPLETED = "Completed"
    INVALID_ASSIGNMENT = "InvalidAssignment"
    MODEL_NOT_AVAILABLE = "ModelNotAvailable"
    COLLECTION_MISMATCH = "CollectionMismatch"
    SOURCE_MISCONFIGURED = "SourceMisconfigured"
    SOURCE_UNAVAILABLE = "SourceUnavailable"
    MILVUS_UNAVAILABLE = "MilvusUnavailable"
    TERMINATED = "Terminated"
    INTERNAL_ERROR = "InternalError"
    STORAGE_UNAVAILABLE = "StorageUnavailable"
    """The backup's or the files' store cannot be reached or written (retryable)."""
    BACKUP_CORRUPTED = "BackupCorrupted"
    """A backup's file is missing, or its checksum or row count differs from the manifest."""
    BACKUP_INCOMPATIBLE = "BackupIncompatible"
    """A backup's schema (dimension, metric, key, fields) differs from the collection's."""


class BatchReference(ResultModel):
    namespace: str = ""
    plan: str = ""
    index: int = -1


class RecordCounts(ResultModel):
    read: int = 0
    """Rows read from the source in the key range."""
    embedded: int = 0
    """Records encoded by the model."""
    upserted: int = 0
    """Records written to Milvus."""
    skipped: dict[str, int] = Field(default_factory=dict)
    """Records read but not written, by reason (see SkipReason)."""
    truncated: int = 0
    """Records whose text was longer than the model's sequence limit (embedded truncated; a text
    far beyond the model's window is cut before tokenizing, see the worker's text limit)."""


class Timings(ResultModel):
    """Milliseconds. read, encode and write overlap: their sum exceeds total."""

    total_ms: int = 0
    model_load_ms: int = 0
    startup_ms: int = 0
    """From the process's start to the model being ready: the interpreter, imports and model load,
    the fixed cost every Job pays before its first record (model_load_ms alone when the process
    start is unknown)."""
    read_ms: int = 0
    encode_ms: int = 0
    write_ms: int = 0
    flush_ms: int = 0
    quality_ms: int = 0
    encode_idle_ms: int = 0
    """How long the model waited for rows (reading too slow) or for the writer (writing too slow)."""
    batch_p50_ms: float = 0.0
    batch_p95_ms: float = 0.0
    """Encode latency of one micro-batch, median and 95th percentile."""


class BatchSizes(ResultModel):
    """The micro-batch sizes the optimizer chose."""

    count: int = 0
    first: int = 0
    last: int = 0
    min: int = 0
    max: int = 0
    median: int = 0
    runs: list[tuple[int, int]] = Field(default_factory=list)
    """[size, how many consecutive batches had it], in order; cut short when long."""
    runs_truncated: bool = False


class CoherenceStats(ResultModel):
    min: float
    mean: float
    max: float


class Anomalies(ResultModel):
    norm_outliers: int = 0
    duplicate_vectors: int = 0
    """Vectors identical to another one of a different text."""
    mean_pairwise_cosine: float | None = None
    """Over the sample; near 1 means the embeddings collapsed."""
    collapse: bool = False


class QualityResult(ResultModel):
    sampled: int = 0
    coherence: CoherenceStats | None = None
    """Cosine between stored vectors and a float32, full-length reference encoding of their text."""
    retrievability: float | None = None
    """Share of sampled vectors that, searched through the index, find their own record first."""
    missing: int = 0
    """Sampled records that were upserted but are not in the collection."""
    anomalies: Anomalies = Field(default_factory=Anomalies)


class ModelReport(ResultModel):
    name: str = ""
    device: str = ""
    backend: str = ""
    """What ran the model: torch, onnx (ONNX Runtime) or openvino (embedding.backend)."""
    precision: str = ""
    max_seq_length: int = 0
    """The sequence limit the worker encoded with."""
    full_max_seq_length: int = 0
    """The model's own limit, used for the reference encoding."""
    dimension: int = 0
    threads: int = 0
    """CPU threads the model ran with: the pod's CPU request, else its limit (see cpu_budget)."""


class WorkerResult(ResultModel):
    """What one embedding Job did."""

    version: Literal[1] = RESULT_VERSION
    kind: Literal["WorkerResult"] = "WorkerResult"
    status: Status
    reason: Reason
    message: str = ""
    batch: BatchReference = Field(default_factory=BatchReference)
    collection: str = ""
    records: RecordCounts = Field(default_factory=RecordCounts)
    records_per_second: float = 0.0
    timings: Timings = Field(default_factory=Timings)
    batch_sizes: BatchSizes = Field(default_factory=BatchSizes)
    quality: QualityResult | None = None
    model: ModelReport | None = None
    recommendations: list[str] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def to_termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """The result as JSON of at most ``limit`` UTF-8 bytes: long lists and messages are cut
        (the counts never are)."""
        result = self.model_copy(deep=True)
        result.message = _shorten(result.message, MAX_MESSAGE_CHARS)
        document = result.to_json()
        while len(document.encode("utf-8")) > limit:
            runs = result.batch_sizes.runs
            if runs:
                result.batch_sizes.runs = runs[: len(runs) // 2]
                result.batch_sizes.runs_truncated = True
            elif result.recommendations:
                result.recommendations.pop()
            elif len(result.message) > 64:
                result.message = _shorten(result.message, len(result.message) // 2)
            else:  # only counts and short texts are left: the minimum that always fits
                return WorkerResult(
                    status=self.status,
                    reason=self.reason,
                    message=result.message,
                    batch=self.batch,
                    records=self.records,
                ).to_json()
            document = result.to_json()
        return document


def _shorten(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max(0, max_chars - 1)] + "…"
