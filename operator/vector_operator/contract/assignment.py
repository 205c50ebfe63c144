"""The worker's assignment: everything one embedding Job needs, as the MigrationPlan controller
writes it into the pod.

The controller serialises a :class:`WorkerAssignment` to JSON (camelCase keys) and hands it over
in the environment variable ``VO_ASSIGNMENT`` (or as a file, ``vector-operator worker
--assignment FILE``). It never carries a secret: where a credential is needed it names the
environment variable that holds it (the pod takes those from Secrets with
``env[].valueFrom.secretKeyRef``), and the worker reads that variable and nothing else.

The source, model, micro-batching and scalar-field shapes are the API's own models, so their
fields, bounds and defaults are defined once, in :mod:`vector_operator.api`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from vector_operator.api.migrationplan import (
    MAX_ENCODE_BATCH_SIZE,
    EncodeBatching,
    FileRecords,
    QualitySpec,
    SqlTable,
)
from vector_operator.api.model import ApiModel
from vector_operator.api.vectorcollection import (
    MAX_DIMENSION,
    MIN_DIMENSION,
    PRIMARY_KEY_FIELD,
    VECTOR_FIELD,
    EmbeddingSpec,
    MetricType,
    MilvusConnection,
    PrimaryKeySpec,
    ScalarField,
    VectorCollectionSpec,
)
from vector_operator.contract.documents import load_document
from vector_operator.contract.field_values import parse_field_value

ASSIGNMENT_ENV = "VO_ASSIGNMENT"
"""The environment variable that holds the assignment as JSON."""
CPU_REQUEST_ENV = "VO_CPU_REQUEST_MILLICORES"
"""The worker container's ``requests.cpu`` in millicores (downward API; 0 when not requested)."""
CPU_LIMIT_ENV = "VO_CPU_LIMIT_MILLICORES"
"""Its ``limits.cpu`` in millicores (downward API; the node's allocatable CPUs when unset)."""
ASSIGNMENT_VERSION: Literal[3] = 3
"""2: the API's models for source, model and encode settings; typed numeric key bounds; field
values are columns or constants. 3: ``startBatchSize`` (the micro-batch size earlier Jobs of the
plan settled on) and ``model.backend``. A version 3 worker also reads version 2 assignments."""
READABLE_VERSIONS = (2, 3)

EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=253)]
"""The name of an environment variable (never its value)."""
MilvusName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=255)]
"""A Milvus collection or database name."""


class BatchIdentity(ApiModel):
    """Which plan and which batch this Job is; echoed in the result and the logs."""

    namespace: str = Field(default="", max_length=63)
    plan: str = Field(min_length=1, max_length=253)
    index: int = Field(ge=0)
    """The batch number within the plan."""


class MilvusTarget(ApiModel):
    """The Milvus to write to."""

    uri: str = Field(min_length=1, max_length=2048)
    """e.g. http://milvus.milvus.svc:19530 or https://... (TLS)."""
    database: MilvusName = MilvusConnection.model_fields["database"].default
    token_env: EnvVarName | None = None
    """The environment variable holding the token (or user:password); unset: no authentication."""
    tls: bool = False
    """Connect over TLS (an https:// uri implies it)."""
    ca_file: str | None = Field(default=None, max_length=1024)
    """PEM CA bundle that signed Milvus's certificate (a mounted Secret); unset: system trust."""
    server_name: str | None = Field(default=None, max_length=253)
    """The name to verify Milvus's certificate against, when it differs from the uri's host."""
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """Deadline of one Milvus call (pymilvus retries transient failures within it)."""


class CollectionTarget(ApiModel):
    """The physical collection (not the alias) this Job fills, as the operator created it."""

    name: MilvusName
    primary_key: PrimaryKeySpec = Field(default_factory=PrimaryKeySpec)
    dimension: int = Field(ge=MIN_DIMENSION, le=MAX_DIMENSION)
    metric_type: MetricType = VectorCollectionSpec.model_fields["metric_type"].default
    scalar_fields: list[ScalarField] = Field(default_factory=list, max_length=64)
    search_params: dict[str, int | float] = Field(default_factory=dict)
    """The serving search parameters (nprobe, ef); the retrievability check searches with them."""

    @property
    def primary_key_field(self) -> str:
        return PRIMARY_KEY_FIELD

    @property
    def vector_field(self) -> str:
        return VECTOR_FIELD


def _check_fields(fields: dict[str, str]) -> None:
    for value in fields.values():
        parse_field_value(value)


def _check_text_and_fields(columns: list[str] | None, template: str | None, fields: dict[str, str]) -> None:
    if (columns is None) == (template is None):
        raise ValueError("set exactly one of the text columns and textTemplate")
    _check_fields(fields)


class SqlSource(SqlTable):
    """One table read through SQLAlchemy, in the database's primary-key order."""

    url_env: EnvVarName
    """The environment variable holding the SQLAlchemy URL (it carries the password)."""
    soft_delete_column: str | None = Field(default=None, min_length=1, max_length=255)
    """A column that is NULL for live rows (the plan's sync.deletes.softDeleteColumn): rows with a
    value there are never embedded, and a sync deletes them from the collection."""

    @model_validator(mode="after")
    def _text_and_fields(self) -> Self:
        _check_text_and_fields(self.text_columns, self.text_template, self.fields or {})
        return self


S3_ACCESS_KEY_ENV = "VO_S3_ACCESS_KEY_ID"
"""The environment variable a Job's pod takes the S3 access key id into (from the plan's Secret)."""
S3_SECRET_KEY_ENV = "VO_S3_SECRET_ACCESS_KEY"  # noqa: S105 - the name of the variable, not a secret
"""The environment variable holding the S3 secret access key."""


class S3Access(ApiModel):
    """How a worker reaches an S3-compatible store: its credentials by the variables holding them."""

    endpoint: str | None = Field(default=None, max_length=2048)
    """http(s)://host:port; unset: AWS S3."""
    region: str = Field(default="us-east-1", min_length=1, max_length=64)
    access_key_env: EnvVarName = S3_ACCESS_KEY_ENV
    secret_key_env: EnvVarName = S3_SECRET_KEY_ENV


class StorageAccess(ApiModel):
    """A directory a worker reads or writes: a local path (a mounted claim) or s3://bucket/prefix."""

    path: str = Field(min_length=2, max_length=2048)
    s3: S3Access | None = None

    @model_validator(mode="after")
    def _s3_with_s3_paths(self) -> Self:
        if (self.s3 is not None) != self.path.startswith("s3://"):
            raise ValueError("an s3:// path needs s3, and s3 an s3:// path")
        if self.s3 is None and not self.path.startswith("/"):
            raise ValueError("a local path must be absolute")
        return self


class FileSource(FileRecords):
    """Records from JSONL, Parquet or CSV files; the key range counts records in file order. With
    ``vectorField`` the records carry their vectors, which are imported as they are."""

    s3: S3Access | None = None
    """The object store of an s3:// path."""
    keeps_content_hash: bool = False
    """The files are a backup's: their content_hash column is written as it is (a sync resumed on
    the restored collection then reuses the vectors whose text did not change)."""

    @model_validator(mode="after")
    def _text_and_fields(self) -> Self:
        if self.vector_field is None or self.text_fields is not None or self.text_template is not None:
            _check_text_and_fields(self.text_fields, self.text_template, self.fields or {})
        else:  # precomputed vectors without a text: the fields alone
            _check_fields(self.fields or {})
        if (self.s3 is not None) != self.path.startswith("s3://"):
            raise ValueError("an s3:// path needs s3, and s3 an s3:// path")
        return self


class Source(ApiModel):
    sql: SqlSource | None = None
    files: FileSource | None = None

    @property
    def fields(self) -> dict[str, str]:
        """Scalar field -> where its value comes from (see field_values)."""
        chosen = self.sql or self.files
        return dict(chosen.fields or {}) if chosen is not None else {}

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        if (self.sql is None) == (self.files is None):
            raise ValueError("set exactly one of sql and files")
        return self


class NumericBound(ApiModel):
    """A key bound of a NUMERIC / DECIMAL key column, as exact decimal text."""

    numeric: str = Field(pattern=r"^-?[0-9]+([.][0-9]+)?$", max_length=128)


KeyBound = int | Annotated[str, StringConstraints(max_length=65535)] | NumericBound
"""A batch bound as it travels: an integer, a text, or an exact decimal."""
KeyValue = int | str | Decimal
"""A batch bound as the database compares it."""


def key_bound(value: KeyValue) -> KeyBound:
    """The travelling form of a key value."""
    if isinstance(value, Decimal):
        return NumericBound(numeric=format(value, "f"))
    return value


def key_value(bound: KeyBound) -> KeyValue:
    """The value a bound stands for, to be compared by the database (never by Python: a database's
    collation or numeric type orders differently)."""
    if isinstance(bound, NumericBound):
        try:
            return Decimal(bound.numeric)
        except InvalidOperation:  # the pattern admits only decimals; kept for mypy's sake
            raise ValueError(f"{bound.numeric!r} is not a decimal") from None
    return bound


class KeyRange(ApiModel):
    """The half-open range [start, end) of primary keys (SQL) or record numbers (files) this Job
    owns, in the source's own order. A missing bound is open."""

    start: KeyBound | None = None
    end: KeyBound | None = None


class QualitySettings(ApiModel):
    sample_size: int = Field(default=QualitySpec.model_fields["sample_size"].default, ge=1, le=10000)
    """Records sampled from this batch for coherence and retrievability."""


class WorkerAssignment(ApiModel):
    """One embedding Job's work."""

    version: Literal[2, 3] = ASSIGNMENT_VERSION
    batch: BatchIdentity
    milvus: MilvusTarget
    collection: CollectionTarget
    source: Source
    key_range: KeyRange = Field(default_factory=KeyRange)
    model: EmbeddingSpec
    encode: EncodeBatching = Field(default_factory=EncodeBatching)
    start_batch_size: int | None = Field(default=None, ge=1, le=MAX_ENCODE_BATCH_SIZE)
    """The micro-batch size to start at: what earlier Jobs of the plan settled on, so that each Job
    does not learn it again from the default. Kept within encode's bounds. Unset: the default."""
    quality: QualitySettings = Field(default_factory=QualitySettings)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_work_fits(self.encode, self.model, self.collection, self.source.fields)
        bounds = (self.key_range.start, self.key_range.end)
        if self.source.files is not None and any(
            bound is not None and (not isinstance(bound, int) or bound < 0) for bound in bounds
        ):
            raise ValueError("a files source counts records from 0: keyRange bounds must be integers >= 0")
        return self


def check_work_fits(
    encode: EncodeBatching, model: EmbeddingSpec, collection: CollectionTarget, source_fields: Iterable[str]
) -> None:
    """What every worker assignment must hold together (a batch's, the sync's): encode's bounds in
    order, a truncateDim that gives the collection's dimension, source fields the collection has.
    Raises ValueError saying which."""
    if encode.min_batch_size > encode.max_batch_size:
        raise ValueError(
            f"encode.minBatchSize ({encode.min_batch_size}) must not exceed maxBatchSize"
            f" ({encode.max_batch_size})"
        )
    if model.truncate_dim is not None and model.truncate_dim != collection.dimension:
        raise ValueError(
            f"model.truncateDim ({model.truncate_dim}) must equal collection.dimension"
            f" ({collection.dimension})"
        )
    declared = {field.name for field in collection.scalar_fields}
    if unknown := sorted(set(source_fields) - declared):
        raise ValueError(
            f"source fields {unknown} are not scalar fields of the collection {sorted(declared)}"
        )


class InvalidAssignment(Exception):
    """The assignment is missing or does not validate; the message says what to fix."""


def load_assignment(assignment_file: Path | None, environ: Mapping[str, str]) -> WorkerAssignment:
    """The assignment from ``assignment_file`` when given, else from ``$VO_ASSIGNMENT``."""
    return load_document(
        WorkerAssignment,
        assignment_file,
        environ,
        env=ASSIGNMENT_ENV,
        what="assignment",
        versions=READABLE_VERSIONS,
        refused=InvalidAssignment,
    )
