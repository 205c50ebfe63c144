"""The worker's assignment: everything one embedding Job needs, as the MigrationPlan controller
writes it into the pod.

This is the contract between the controller and the worker. The controller serialises a
:class:`WorkerAssignment` to JSON (camelCase keys) and hands it over in the environment variable
``VO_ASSIGNMENT`` (or as a file, ``vector-operator worker --assignment FILE``). It never carries a
secret: where a credential is needed it names the environment variable that holds it (the pod
takes those from Secrets with ``env[].valueFrom.secretKeyRef``), and the worker reads that
variable and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic.alias_generators import to_camel

ASSIGNMENT_ENV = "VO_ASSIGNMENT"
"""The environment variable that holds the assignment as JSON."""
ASSIGNMENT_VERSION: Literal[1] = 1

EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=253)]
"""The name of an environment variable (never its value)."""
MilvusName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=255)]
"""A Milvus collection, field or database name."""
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
KeyBound = int | Annotated[str, StringConstraints(max_length=65535)]


class AssignmentModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown keys refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class MetricType(StrEnum):
    L2 = "L2"
    IP = "IP"
    COSINE = "COSINE"


class Device(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"
    AUTO = "auto"


class ScalarType(StrEnum):
    VARCHAR = "VARCHAR"
    INT64 = "INT64"
    INT32 = "INT32"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    BOOL = "BOOL"
    JSON = "JSON"


class FileFormat(StrEnum):
    JSONL = "JSONL"
    PARQUET = "Parquet"
    CSV = "CSV"


class BatchIdentity(AssignmentModel):
    """Which plan and which batch this Job is; echoed in the result and the logs."""

    namespace: str = Field(default="", max_length=63)
    plan: str = Field(min_length=1, max_length=253)
    index: int = Field(ge=0)
    """The batch number within the plan."""


class MilvusTarget(AssignmentModel):
    """The Milvus to write to."""

    uri: str = Field(min_length=1, max_length=2048)
    """e.g. http://milvus.milvus.svc:19530 or https://... (TLS)."""
    database: MilvusName = "default"
    token_env: EnvVarName | None = None
    """The environment variable holding the token (or user:password); unset: no authentication."""
    ca_file: str | None = None
    """PEM CA bundle that signed Milvus's certificate (a mounted Secret); unset: system trust."""
    server_name: str | None = Field(default=None, max_length=253)
    """The name to verify Milvus's certificate against, when it differs from the uri's host."""
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """Deadline of one Milvus call (pymilvus retries transient failures within it)."""


class PrimaryKeyType(StrEnum):
    INT64 = "INT64"
    VARCHAR = "VARCHAR"


DEFAULT_VARCHAR_KEY_LENGTH = 512


class PrimaryKey(AssignmentModel):
    """The collection's primary key field type (VectorCollection spec.primaryKey)."""

    type: PrimaryKeyType = PrimaryKeyType.INT64
    max_length: int | None = Field(default=None, ge=1, le=65535)
    """VARCHAR: the longest key in UTF-8 bytes; unset: 512."""


class ScalarField(AssignmentModel):
    name: MilvusName
    type: ScalarType
    max_length: int | None = Field(default=None, ge=1, le=65535)
    """VARCHAR: the longest value in UTF-8 bytes."""


class CollectionTarget(AssignmentModel):
    """The physical collection (not the alias) this Job fills, as the operator created it."""

    name: MilvusName
    primary_key_field: MilvusName = "id"
    primary_key: PrimaryKey = Field(default_factory=PrimaryKey)
    vector_field: MilvusName = "vector"
    dimension: int = Field(ge=2, le=32768)
    metric_type: MetricType = MetricType.COSINE
    scalar_fields: list[ScalarField] = Field(default_factory=list, max_length=64)
    search_params: dict[str, int | float] = Field(default_factory=dict)
    """The serving search parameters (nprobe, ef); the retrievability check searches with them."""


class SqlSource(AssignmentModel):
    """One table read through SQLAlchemy, in primary-key order."""

    url_env: EnvVarName
    """The environment variable holding the SQLAlchemy URL (it carries the password)."""
    table: str = Field(
        min_length=1, max_length=255, pattern=r"^([A-Za-z_][A-Za-z0-9_$]*[.])?[A-Za-z_][A-Za-z0-9_$]*$"
    )
    primary_key: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$")
    text_columns: list[ColumnName] | None = Field(default=None, min_length=1, max_length=32)
    text_template: str | None = Field(default=None, min_length=1, max_length=4096)
    fields: dict[MilvusName, str] = Field(default_factory=dict, max_length=64)
    """Scalar field -> column name or SQL expression, e.g. {"source_table": "'nodes'"}."""

    @model_validator(mode="after")
    def _exactly_one_text_source(self) -> Self:
        if (self.text_columns is None) == (self.text_template is None):
            raise ValueError("set exactly one of textColumns and textTemplate")
        return self


class FileSource(AssignmentModel):
    """Records from JSONL, Parquet or CSV files; the key range counts records in file order."""

    format: FileFormat
    path: str = Field(min_length=1, max_length=1024)
    """A file or a glob (files are read in name order)."""
    id_field: ColumnName
    text_fields: list[ColumnName] | None = Field(default=None, min_length=1, max_length=32)
    text_template: str | None = Field(default=None, min_length=1, max_length=4096)
    fields: dict[MilvusName, ColumnName] = Field(default_factory=dict, max_length=64)
    """Scalar field -> record key or column."""

    @model_validator(mode="after")
    def _exactly_one_text_source(self) -> Self:
        if (self.text_fields is None) == (self.text_template is None):
            raise ValueError("set exactly one of textFields and textTemplate")
        return self


class Source(AssignmentModel):
    sql: SqlSource | None = None
    files: FileSource | None = None

    @property
    def fields(self) -> dict[str, str]:
        """Scalar field -> where its value comes from."""
        return dict(self.sql.fields if self.sql else self.files.fields if self.files else {})

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        if (self.sql is None) == (self.files is None):
            raise ValueError("set exactly one of sql and files")
        return self


class KeyRange(AssignmentModel):
    """The half-open range [start, end) of primary keys (SQL) or record numbers (files) this Job
    owns. A missing bound is open."""

    start: KeyBound | None = None
    end: KeyBound | None = None

    @model_validator(mode="after")
    def _ordered_bounds_of_one_type(self) -> Self:
        if self.start is None or self.end is None:
            return self
        if type(self.start) is not type(self.end):
            raise ValueError("start and end must both be integers or both be strings")
        if self.start >= self.end:  # type: ignore[operator]  # same type, checked above
            raise ValueError(f"the key range is empty: start {self.start!r} is not below end {self.end!r}")
        return self


class ModelSettings(AssignmentModel):
    """The sentence-transformers model, as the VectorCollection declares it."""

    name: str = Field(min_length=1, max_length=512)
    """A model id (resolved offline: bundled, or in the Hugging Face cache) or a local path."""
    normalize: bool = True
    device: Device = Device.CPU
    truncate_dim: int | None = Field(default=None, ge=2, le=32768)
    max_seq_length: int | None = Field(default=None, ge=1, le=32768)
    """Cut input to this many tokens (faster, less faithful); unset: the model's own limit."""


class EncodeBounds(AssignmentModel):
    """Adaptive micro-batching: the batch size moves within the bounds towards the target latency."""

    min_batch_size: int = Field(default=16, ge=1, le=4096)
    max_batch_size: int = Field(default=1024, ge=1, le=4096)
    target_batch_latency_ms: int = Field(default=100, ge=1, le=60000)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_batch_size > self.max_batch_size:
            raise ValueError(
                f"minBatchSize ({self.min_batch_size}) must not exceed maxBatchSize ({self.max_batch_size})"
            )
        return self


class QualitySettings(AssignmentModel):
    sample_size: int = Field(default=100, ge=1, le=10000)
    """Records sampled from this batch for coherence and retrievability."""


class WorkerAssignment(AssignmentModel):
    """One embedding Job's work."""

    version: Literal[1] = ASSIGNMENT_VERSION
    batch: BatchIdentity
    milvus: MilvusTarget
    collection: CollectionTarget
    source: Source
    key_range: KeyRange = Field(default_factory=KeyRange)
    model: ModelSettings
    encode: EncodeBounds = Field(default_factory=EncodeBounds)
    quality: QualitySettings = Field(default_factory=QualitySettings)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.model.truncate_dim is not None and self.model.truncate_dim != self.collection.dimension:
            raise ValueError(
                f"model.truncateDim ({self.model.truncate_dim}) must equal collection.dimension "
                f"({self.collection.dimension})"
            )
        if self.source.files is not None and any(
            isinstance(bound, str) for bound in (self.key_range.start, self.key_range.end)
        ):
            raise ValueError("a files source counts records: keyRange bounds must be integers")
        if self.source.files is not None and any(
            isinstance(bound, int) and bound < 0 for bound in (self.key_range.start, self.key_range.end)
        ):
            raise ValueError("a files source counts records from 0: keyRange bounds must not be negative")
        mapped = set(self.source.fields)
        declared = {field.name for field in self.collection.scalar_fields}
        if unknown := sorted(mapped - declared):
            raise ValueError(
                f"source fields {unknown} are not scalar fields of the collection {sorted(declared)}"
            )
        return self


class InvalidAssignment(Exception):
    """The assignment is missing or does not validate; the message says what to fix."""


def load_assignment(assignment_file: Path | None, environ: Mapping[str, str]) -> WorkerAssignment:
    """The assignment from ``assignment_file`` when given, else from ``$VO_ASSIGNMENT``."""
    if assignment_file is not None:
        try:
            document = assignment_file.read_text(encoding="utf-8")
        except OSError as error:
            raise InvalidAssignment(
                f"cannot read the assignment file {assignment_file}: {error.strerror}"
            ) from None
        origin = str(assignment_file)
    elif environ.get(ASSIGNMENT_ENV):
        document, origin = environ[ASSIGNMENT_ENV], f"${ASSIGNMENT_ENV}"
    else:
        raise InvalidAssignment(f"no assignment: set ${ASSIGNMENT_ENV} (JSON) or pass --assignment FILE")
    try:
        return WorkerAssignment.model_validate(json.loads(document))
    except json.JSONDecodeError as error:
        raise InvalidAssignment(f"{origin} is not JSON: {error.msg} at line {error.lineno}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or '(top)'}: {issue['msg']}"
            for issue in error.errors()
        )
        raise InvalidAssignment(f"{origin} is not a valid assignment: {problems}") from None
