"""MigrationPlan: fills a VectorCollection from a source (an SQL table or files), in phases, by
embedding Jobs, with quality gates and an optional approval before it starts and before cutover."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, WithJsonSchema

from vector_operator.api.bounds import MAX_RECENT_BATCHES, MAX_RECENT_FAILURES, SIMILARITY_RANGE
from vector_operator.api.conditions import Conditions
from vector_operator.api.kubernetes_types import (
    OBJECT_NAME_PATTERN,
    LocalObjectReference,
    ObjectMeta,
    ResourceRequirements,
    SecretKeyReference,
    Toleration,
)
from vector_operator.api.migration_storage import (
    BackupSource,
    BackupSpec,
    BackupStatus,
    S3Storage,
    VolumeClaimMount,
    location_rules,
)
from vector_operator.api.migration_sync import SyncSpec, SyncStatus
from vector_operator.api.model import (
    ApiModel,
    PreservedObject,
    Rule,
    duration_rule,
    list_type,
    validations,
)
from vector_operator.api.resource import AGE, API_VERSION, PrinterColumn, ResourceKind
from vector_operator.api.rollbackpolicy import ActionStep, RollbackAction

MAX_ENCODE_BATCH_SIZE = 4096
AUTO: Literal["auto"] = "auto"
# Compact batch ranges ("0-99,120-130"); the operator merges adjacent ranges to stay far below.
MAX_COMPLETED_RANGES_LENGTH = 65536
SQL_IDENTIFIER_RE = "^[A-Za-z_][A-Za-z0-9_$]*$"
SQL_TABLE_RE = "^([A-Za-z_][A-Za-z0-9_$]*[.])?[A-Za-z_][A-Za-z0-9_$]*$"
# A scalar field's value: a column (or record key), or a constant: a quoted string ('nodes', with ''
# for a quote), a number (42, -1.5), true or false. Never an SQL expression.
FIELD_VALUE_RE = "^([A-Za-z_][A-Za-z0-9_$]*|'([^']|'')*'|-?[0-9]+([.][0-9]+)?|true|false)$"
MIN_COHERENCE, MAX_COHERENCE = SIMILARITY_RANGE
FieldValueText = Annotated[str, Field(min_length=1, max_length=256)]
"""A column name or a constant (see FIELD_VALUE_RE); bounded, so the API server can afford its rule."""


def _sql_identifier_rule(what: str) -> Rule:
    return Rule(
        rule=f"self.matches('{SQL_IDENTIFIER_RE}')",
        message=f"{what} must be a plain column name: letters, digits, _ and $, starting with a letter "
        "or an underscore",
    )


def _exactly_one_text_rule(columns: str, template: str, where: str) -> Rule:
    return Rule(
        rule=f"has(self.{columns}) != has(self.{template})",
        message=f"{where} must set exactly one of {columns} (columns joined with newlines) or {template} "
        "(a format string over the columns, e.g. '{title}\\n{body}')",
    )


_FILES_TEXT_RULE = Rule(
    rule="has(self.vectorField) ? !(has(self.textFields) && has(self.textTemplate))"
    " : has(self.textFields) != has(self.textTemplate)",
    message="source.files must set exactly one of textFields (columns joined with newlines) or textTemplate "
    "(a format string over the columns, e.g. '{title}\\n{body}'); with vectorField, at most one",
)
_FIELD_NAMES_RULE = Rule(
    rule="self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",
    message="the keys of fields are scalar field names of the VectorCollection: letters, digits and "
    "underscores, starting with a letter or an underscore",
)
_FIELD_VALUES_RULE = Rule(
    rule=f'self.all(k, self[k].matches("{FIELD_VALUE_RE}"))',
    message="each value of fields is a column name, or a constant: a quoted string such as 'nodes' "
    "(write '' for a quote), a number such as 42 or -1.5, true or false; SQL expressions are not "
    "accepted",
)


class SqlTable(ApiModel):
    """Rows of one table, read through SQLAlchemy in the database's own primary-key order. Batches
    are ranges of the primary key."""

    model_config = ConfigDict(
        json_schema_extra=validations(_exactly_one_text_rule("textColumns", "textTemplate", "source.sql"))
    )

    table: str = Field(
        min_length=1,
        max_length=255,
        json_schema_extra=validations(
            Rule(
                rule=f"self.matches('{SQL_TABLE_RE}')",
                message="table must be a table name, optionally schema-qualified (schema.table): "
                "letters, digits, _ and $",
            )
        ),
    )
    """Table (or view) to read, optionally schema-qualified: nodes or public.nodes."""
    primary_key: str = Field(
        min_length=1, max_length=255, json_schema_extra=validations(_sql_identifier_rule("primaryKey"))
    )
    """Unique integer, numeric or text column identifying a row; it becomes the Milvus primary key,
    so re-running a batch overwrites instead of duplicating. Batches follow the database's own
    ordering of it (collation, numeric types). Rows with a NULL key are skipped and counted
    (nullKey); a column that is not unique is refused at planning."""
    text_columns: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        json_schema_extra=list_type("atomic"),
    )
    """Columns whose values, joined with newlines in this order, are the text to embed. Exactly
    one of textColumns and textTemplate."""
    text_template: str | None = Field(default=None, min_length=1, max_length=4096)
    """A Python format string over the row's columns that builds the text to embed, e.g.
    "{title}\\n{body}". Exactly one of textColumns and textTemplate."""
    fields: dict[str, FieldValueText] | None = Field(
        default=None, max_length=64, json_schema_extra=validations(_FIELD_NAMES_RULE, _FIELD_VALUES_RULE)
    )
    """Values for the VectorCollection's scalar fields, e.g. {source_table: "'nodes'", category:
    category}: field name -> a column name, or a constant: a quoted string ('nodes'; '' for a
    quote), a number (42, -1.5), true or false. SQL expressions are refused."""


class SqlSource(SqlTable):
    """Rows of one table, read through SQLAlchemy in the database's own primary-key order. Batches
    are ranges of the primary key."""

    url_secret_ref: SecretKeyReference
    """A Secret key holding the SQLAlchemy connection URL, e.g.
    postgresql+psycopg://user:password@db.example:5432/app or sqlite:////data/articles.db."""


class FileFormat(StrEnum):
    """The format of source files."""

    JSONL = "JSONL"
    PARQUET = "Parquet"
    CSV = "CSV"


class FileRecords(ApiModel):
    """Records from files (JSONL, Parquet or CSV): one file, or a glob of files read in name
    order. Batches are ranges of record numbers."""

    model_config = ConfigDict(json_schema_extra=validations(_FILES_TEXT_RULE))

    format: FileFormat
    """JSONL (one JSON object per line), Parquet or CSV (with a header row)."""
    path: str = Field(
        min_length=2,
        max_length=1024,
        json_schema_extra=validations(
            Rule(
                rule="self.startsWith('/') || self.startsWith('s3://')",
                message="path must be an absolute path in the worker, e.g. /data/articles/*.jsonl, or an "
                "s3:// URL such as s3://corpus/articles/*.parquet",
            )
        ),
    )
    """Absolute path of the file, or a glob such as /data/articles/*.jsonl, as the worker sees it;
    or s3://bucket/prefix/*.parquet (with s3)."""
    id_field: str = Field(min_length=1, max_length=255)
    """Record key (JSONL), column (Parquet, CSV) holding the unique id that becomes the Milvus
    primary key."""
    text_fields: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        json_schema_extra=list_type("atomic"),
    )
    """Keys or columns whose values, joined with newlines in this order, are the text to embed.
    Exactly one of textFields and textTemplate (with vectorField, at most one: the text is then
    only encoded for the coherence sample)."""
    text_template: str | None = Field(default=None, min_length=1, max_length=4096)
    """A Python format string over the record's keys that builds the text to embed, e.g.
    "{title}\\n{body}". Exactly one of textFields and textTemplate."""
    fields: dict[str, FieldValueText] | None = Field(
        default=None, max_length=64, json_schema_extra=validations(_FIELD_NAMES_RULE, _FIELD_VALUES_RULE)
    )
    """Values for the VectorCollection's scalar fields: field name -> a record key or column, or a
    constant: a quoted string ('nodes'; '' for a quote), a number (42, -1.5), true or false."""
    vector_field: str | None = Field(default=None, min_length=1, max_length=255)
    """A column (a list of floats) holding precomputed vectors: they are imported as they are,
    never re-embedded, after the same checks as the model's (dimension, NaN, zero vectors); the
    text, when given, is encoded on a sample only, to measure coherence with the declared model, so
    that vectors from another model fail the quality gate before the swap."""


class FileSource(FileRecords):
    """Records from files (JSONL, Parquet or CSV) readable by the Job pods: one file, or a glob
    of files read in name order. Batches are ranges of record numbers."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            _FILES_TEXT_RULE,
            *location_rules("source.files", "/data/articles.jsonl"),
        )
    )

    persistent_volume_claim: VolumeClaimMount | None = None
    """The volume holding the files; omitted: the path exists in the worker image or on the host."""
    s3: S3Storage | None = None
    """The object store of an s3:// path."""


class MigrationSource(ApiModel):
    """Where the records come from: exactly one of sql, files and backup."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="[has(self.sql), has(self.files), has(self.backup)].filter(x, x).size() == 1",
                message="source must set exactly one of sql, files or backup",
            )
        )
    )

    sql: SqlSource | None = None
    """A table read through SQLAlchemy."""
    files: FileSource | None = None
    """JSONL, Parquet or CSV files."""
    backup: BackupSource | None = None
    """A backup a plan made (status.backup.location): restored into a new physical collection."""


class EncodeBatching(ApiModel):
    """Adaptive micro-batching inside a worker: the batch size moves between the bounds to keep
    one encode call near the target latency."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="self.minBatchSize <= self.maxBatchSize",
                message="encode.minBatchSize must not exceed encode.maxBatchSize",
                field_path=".minBatchSize",
            )
        )
    )

    min_batch_size: int = Field(default=1, ge=1, le=MAX_ENCODE_BATCH_SIZE)
    """Smallest number of texts encoded in one call (1..4096). The default leaves the size to the
    optimizer: on one CPU core 16 texts of a few hundred tokens take 250-450 ms, far above the
    100 ms target, so a higher floor raises processing-time alarms that say nothing about
    quality. The first call uses it and the size then grows at most twofold per call."""
    max_batch_size: int = Field(default=1024, ge=1, le=MAX_ENCODE_BATCH_SIZE)
    """Largest number of texts encoded in one call (1..4096); at least minBatchSize."""
    target_batch_latency_ms: int = Field(default=100, ge=1, le=60000)
    """Target duration of one encode call, in milliseconds."""


class PodTemplateOverrides(ApiModel):
    """Settings for the embedding Job pods, over the operator's defaults."""

    resources: ResourceRequirements | None = None
    """CPU and memory for the worker container, e.g. {requests: {cpu: "2", memory: 4Gi}}."""
    node_selector: dict[str, str] | None = Field(default=None, max_length=32)
    """Labels a node must have to run the worker pods, e.g. a GPU pool."""
    tolerations: list[Toleration] | None = Field(
        default=None, max_length=32, json_schema_extra=list_type("atomic")
    )
    """Taints the worker pods tolerate."""
    image: str | None = Field(default=None, min_length=1, max_length=1024)
    """Worker image; omitted: the operator's own worker image. Only images the operator's installer
    allowed (--allowed-worker-image) are run: another one is refused with a condition, and no Job
    is created."""
    service_account_name: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=OBJECT_NAME_PATTERN
    )
    """ServiceAccount the worker pods run as; omitted: none (no API token is mounted). Only
    ServiceAccounts the operator's installer allowed (--allowed-worker-service-account) are used:
    another one is refused with a condition, and no Job is created."""


def _count_or_auto(maximum: int) -> WithJsonSchema:
    """The schema of a positive count up to ``maximum`` or "auto": an int-or-string, since JSON
    Schema applies minimum and maximum to numbers only and the pattern to strings only."""
    return WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "minimum": 1,
            "maximum": maximum,
            "pattern": "^auto$",
        }
    )


RecordsPerJob = Annotated[
    Annotated[int, Field(ge=1, le=10_000_000)] | Literal["auto"], _count_or_auto(10_000_000)
]
ConcurrentJobs = Annotated[Annotated[int, Field(ge=1, le=256)] | Literal["auto"], _count_or_auto(256)]


class Batching(ApiModel):
    """How the source is cut into Jobs and how those Jobs run."""

    records_per_job: RecordsPerJob = AUTO
    """Records one Job embeds and writes (1..10000000), or auto (the default): one wave of Jobs of
    at most about 5 minutes' work each, more waves for a larger source, never a Job with less work
    than its own start-up; sized from the pace earlier Jobs of the same collection measured (a CPU
    estimate before any ran). status.sizing says what was chosen and why."""
    max_concurrent_jobs: ConcurrentJobs = AUTO
    """Jobs running at once (1..256), or auto (the default): as many as the nodes a worker pod may
    run on hold by its CPU request (one CPU unless podTemplate.resources says otherwise), at most
    32."""
    encode: EncodeBatching = Field(default_factory=EncodeBatching)
    """Micro-batching inside each Job."""
    pod_template: PodTemplateOverrides | None = None
    """Overrides for the Job pods: resources, nodeSelector, tolerations, image,
    serviceAccountName."""
    backoff_limit: int = Field(default=3, ge=0, le=20)
    """How often a batch's Job retries its pod before the batch counts as failed (0..20)."""
    max_failed_batches: int | None = Field(default=None, ge=0, le=1_000_000)
    """Stop the plan as soon as more batches than this failed for good: its running Jobs are stopped
    and it ends Failed. Omitted: every other batch still runs, and the plan ends Failed listing the
    failed ranges (spec.retry re-runs only those)."""


def _threshold_rules(metric: str, lower_is_worse: bool, why: str) -> list[Rule]:
    worse, better = ("critical", "warning") if lower_is_worse else ("warning", "critical")
    relation = "below" if lower_is_worse else "above"
    return [
        Rule(
            rule="has(self.warning) || has(self.critical)",
            message=f"{metric} needs warning, critical or both (or leave {metric} out for the defaults)",
        ),
        Rule(
            rule=f"!has(self.warning) || !has(self.critical) || self.{worse} < self.{better}",
            message=f"{metric}.critical must be {relation} {metric}.warning: {why}",
            field_path=".critical",
        ),
    ]


class CoherenceThresholds(ApiModel):
    """Coherence thresholds (0..1). Coherence is the cosine between a stored vector and a
    reference encoding of the same text (-1..1); a healthy pipeline reads 0.99 or more."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            *_threshold_rules("coherence", lower_is_worse=True, why="lower coherence is worse")
        )
    )

    warning: float | None = Field(default=None, ge=0, le=1)
    """Below this the plan's mean coherence is reported (QualityDegraded=True, an Event)."""
    critical: float | None = Field(default=None, ge=0, le=1)
    """Below this the plan's mean coherence fails validation: the alias does not move. It is judged
    over all sampled records, not per batch (a batch samples few records, its mean is noisy); a
    RollbackPolicy on coherence with forBatches acts on batches. Lower than warning."""


class ProcessingTimeThresholds(ApiModel):
    """Thresholds on the time to encode one micro-batch, in milliseconds."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            *_threshold_rules("processingTimeMs", lower_is_worse=False, why="a longer time is worse")
        )
    )

    warning: float | None = Field(default=None, ge=0)
    """Above this (milliseconds) the plan is reported (QualityDegraded=True, an Event)."""
    critical: float | None = Field(default=None, ge=0)
    """Above this (milliseconds) the plan is reported as critically slow (QualityDegraded=True,
    reason CriticalThresholdCrossed). Speed alone never fails a batch, whose vectors are as good as a
    fast one's: a RollbackPolicy on processingTimeMs acts on it. Higher than warning."""


class FailureRateThresholds(ApiModel):
    """Thresholds on the share of records that fail (0..1, e.g. 0.02 for 2 %)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            *_threshold_rules("failureRate", lower_is_worse=False, why="a higher failure rate is worse")
        )
    )

    warning: float | None = Field(default=None, ge=0, le=1)
    """Above this share of failed records the plan is reported (QualityDegraded=True, an Event)."""
    critical: float | None = Field(default=None, ge=0, le=1)
    """Above this share of failed (skipped) records over the whole plan, validation fails and the
    alias does not move. A single batch above it is reported; a RollbackPolicy on failureRate acts
    on sustained batches. Higher than warning."""


class QualitySpec(ApiModel):
    """Quality gates, measured on a sample of every batch. Omitted thresholds take the defaults
    shown (coherence 0.90 / 0.85, processing time 150 / 250 ms, failure rate 2 % / 5 %). The
    critical levels of coherence and failure rate are enforced over the whole plan, at validation
    (the alias moves only when both hold); per batch, every level is reported and feeds the
    RollbackPolicy triggers; processing time is reported, never enforced."""

    sample_size: int = Field(default=100, ge=1, le=10000)
    """Records sampled per batch for the quality checks."""
    coherence: CoherenceThresholds = Field(
        default_factory=lambda: CoherenceThresholds(warning=0.90, critical=0.85)
    )
    """Coherence thresholds; critical must be below warning."""
    processing_time_ms: ProcessingTimeThresholds = Field(
        default_factory=lambda: ProcessingTimeThresholds(warning=150, critical=250)
    )
    """Micro-batch encode time thresholds in milliseconds; warning must be below critical."""
    failure_rate: FailureRateThresholds = Field(
        default_factory=lambda: FailureRateThresholds(warning=0.02, critical=0.05)
    )
    """Failed-record share thresholds (0..1); warning must be below critical."""


class MigrationMode(StrEnum):
    """How the new vectors reach the serving alias."""

    BLUE_GREEN = "BlueGreen"
    IN_PLACE = "InPlace"


class Approval(StrEnum):
    """Whether a human approves before work starts."""

    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class Cutover(StrEnum):
    """Whether a human approves the alias swing."""

    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class MigrationPlanSpec(ApiModel):
    """The desired migration."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="!(self.mode == 'InPlace' && self.cutover == 'Manual')",
                message="cutover: Manual needs mode: BlueGreen. InPlace writes into the serving "
                "collection, so there is no alias swing to hold back",
                field_path=".cutover",
            ),
            Rule(
                rule="!has(self.sync) || has(self.source.sql) || (self.sync.mode != 'Continuous'"
                " && !has(self.sync.changeColumn) && !has(self.sync.deletes)"
                " && (!has(self.sync.capture) || self.sync.capture != 'LogicalDecoding'))",
                message="sync follows an SQL table's changes: with source.files leave sync out (files are "
                "read once)",
                field_path=".sync",
            ),
            Rule(
                rule="self.mode != 'InPlace' || has(self.backup)",
                message="mode: InPlace overwrites the serving collection's vectors: set backup.destination "
                "(a PersistentVolumeClaim directory or an s3:// prefix) to export it first, or backup.skip: "
                "true to go without a way back",
                field_path=".backup",
            ),
            Rule(
                rule="!has(self.backup) || !has(self.backup.skip) || !self.backup.skip"
                " || self.mode == 'InPlace'",
                message="backup.skip is for mode InPlace: a BlueGreen plan never changes the serving "
                "collection; leave backup out instead",
                field_path=".backup",
            ),
            Rule(
                rule="!has(self.source.backup) || !has(self.mode) || self.mode == 'BlueGreen'",
                message="a restore (source.backup) builds a new physical collection: use mode BlueGreen",
                field_path=".mode",
            ),
        )
    )

    target_ref: LocalObjectReference = Field(
        json_schema_extra=validations(
            Rule(
                rule="self == oldSelf",
                message="targetRef is immutable: to fill another VectorCollection, create a new "
                "MigrationPlan",
            )
        )
    )
    """The VectorCollection to fill, in this namespace. Cannot be changed."""
    mode: MigrationMode = MigrationMode.BLUE_GREEN
    """BlueGreen builds a new physical collection and swings the alias to it (zero downtime,
    rollback by swinging back); InPlace upserts into the serving collection."""
    source: MigrationSource
    """Where the records come from."""
    batching: Batching = Field(default_factory=Batching)
    """Job sizing, concurrency and pod settings."""
    quality: QualitySpec = Field(default_factory=QualitySpec)
    """Quality gates per batch."""
    approval: Approval = Approval.AUTOMATIC
    """Automatic starts after planning; Manual waits in Planning until approved (kubectl vector
    approve)."""
    paused: bool = False
    """A human's pause: no new Jobs while true (running ones finish); set back to false to resume.
    A pause decided by a RollbackPolicy is recorded in status.pause instead, so a GitOps tool that
    owns this spec never undoes it: setting paused to true and back to false (or clearing
    status.pause) resumes such a plan and arms its policies again."""
    cutover: Cutover = Cutover.AUTOMATIC
    """Automatic swings the alias after validation passes; Manual waits for approval first
    (BlueGreen only)."""
    approved: bool = False
    """With approval: Manual, set to true (kubectl vector approve) to start the plan after
    Planning has shown its batches."""
    rollback: bool = False
    """Set to true to undo a Succeeded (or Syncing) plan within previousCollectionRetention: the
    alias goes back to the collection it served before the cutover, and the plan ends RolledBack
    (a sync stops). Works after an
    earlier automatic pause too."""
    abort: bool = False
    """Set to true to stop a plan that has not ended: its running Jobs stop, the collection it was
    filling is dropped (never one that serves), the alias stays where it is, and the plan ends
    RolledBack (reason AbortRequested). To undo a Succeeded plan, use rollback."""
    retry: int = Field(default=0, ge=0, le=1_000_000)
    """Raise it (e.g. from 0 to 1) to run a Failed plan's failed batches again: completed batches are
    kept, only the ranges in status.failedRanges (and those never run) are embedded."""
    cutover_approved: bool = False
    """With cutover: Manual, set to true to swing the alias once validation has passed."""
    sync: SyncSpec = Field(default_factory=SyncSpec)
    """Writes made to the source during the backfill are caught up before the alias moves; with
    mode Continuous the collection keeps following the source after the cutover (phase Syncing).
    SQL sources only."""
    backup: BackupSpec | None = None
    """Export the collection the plan is about to change (the one the alias serves) to Parquet
    before anything changes; a failed backup fails the plan with nothing changed. Required by
    InPlace (or skip: true); on request for BlueGreen."""
    previous_collection_retention: str = Field(
        default="24h",
        max_length=32,
        json_schema_extra=validations(duration_rule("previousCollectionRetention")),
    )
    """BlueGreen: how long the physical collection the alias pointed at before cutover is kept for
    a rollback before the operator drops it, e.g. 24h or 30m."""


class MigrationPhase(StrEnum):
    """Where the plan stands."""

    PENDING = "Pending"
    PLANNING = "Planning"
    PREPARING = "Preparing"
    GENERATING = "Generating"
    VALIDATING = "Validating"
    CUTTING_OVER = "CuttingOver"
    SYNCING = "Syncing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"
    PAUSED = "Paused"


class MigrationConditionType(StrEnum):
    """The condition types a MigrationPlan reports."""

    APPROVED = "Approved"
    PROGRESSING = "Progressing"
    QUALITY_DEGRADED = "QualityDegraded"
    COMPLETE = "Complete"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"
    IN_SYNC = "InSync"


class MigrationProgress(ApiModel):
    """Batches and records done so far."""

    batches_total: int | None = Field(default=None, ge=0)
    """Batches the plan was split into."""
    batches_succeeded: int | None = Field(default=None, ge=0)
    """Batches written and past their quality gate."""
    batches_failed: int | None = Field(default=None, ge=0)
    """Batches that failed for good."""
    batches_running: int | None = Field(default=None, ge=0)
    """Batches whose Job runs now."""
    records_done: int | None = Field(default=None, ge=0)
    """Records written."""
    records_total: int | None = Field(default=None, ge=0)
    """Records the source held when planned."""
    records_read: int | None = Field(default=None, ge=0)
    """Records the finished batches read from the source."""
    records_skipped: int | None = Field(default=None, ge=0)
    """Records read but not written (see skippedByReason); read = done + skipped."""
    skipped_by_reason: dict[str, int] | None = Field(default=None, max_length=32)
    """Skipped records by reason, e.g. {emptyText: 3, invalidUtf8: 1}."""
    percent: float | None = Field(default=None, ge=0, le=100)
    """Share of records written, in percent."""
    summary: str | None = Field(default=None, max_length=64)
    """Succeeded and total batches as kubectl shows them, e.g. 12/40."""


class JobSizing(ApiModel):
    """How the plan's Jobs were sized when it was planned."""

    records_per_job: int | None = Field(default=None, ge=1)
    """Records per Job (batch)."""
    max_concurrent_jobs: int | None = Field(default=None, ge=1)
    """Jobs running at once."""
    basis: str | None = Field(default=None, max_length=512)
    """Why: the pace and the CPUs it was computed from, or that the spec fixed the numbers."""


class Throughput(ApiModel):
    """Recent speed of the plan."""

    records_per_second: float | None = Field(default=None, ge=0)
    """Records written per second over the last minutes, all Jobs together."""
    job_records_per_second: float | None = Field(default=None, ge=0)
    """Records one Job writes per second once its model is loaded (the latest Jobs, smoothed)."""
    job_startup_seconds: float | None = Field(default=None, ge=0)
    """A Job's start-up: from its process's start to its model being ready (the latest Jobs,
    smoothed)."""
    encode_batch_size: int | None = Field(default=None, ge=1)
    """The micro-batch size the workers settled on most recently (the median of the latest Job's):
    the next Jobs start at it instead of learning it again."""


class CoherenceSummary(ApiModel):
    """Coherence over the sampled records: cosines, so -1..1 (0.99 or more when healthy)."""

    min: float | None = Field(default=None, ge=MIN_COHERENCE, le=MAX_COHERENCE)
    """Lowest coherence of any sampled record."""
    mean: float | None = Field(default=None, ge=MIN_COHERENCE, le=MAX_COHERENCE)
    """Mean coherence of the sampled records."""
    max: float | None = Field(default=None, ge=MIN_COHERENCE, le=MAX_COHERENCE)
    """Highest coherence of any sampled record."""


class MigrationQuality(ApiModel):
    """Quality measured so far, over all batches."""

    coherence: CoherenceSummary | None = None
    """Coherence of the sampled records."""
    retrievability: float | None = Field(default=None, ge=0, le=1)
    """Share of sampled records whose stored vector finds the record itself first."""
    processing_time_ms_p95: float | None = Field(default=None, ge=0)
    """95th percentile micro-batch encode time, in milliseconds."""
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    """Share of records that failed (0..1)."""
    sampled_records: int | None = Field(default=None, ge=0)
    """Records sampled for these figures."""
    recall_at_k: float | None = Field(default=None, ge=0, le=1)
    """Validation: share of the exhaustive search's top k that the serving index search returns."""
    search_latency_p95_ms: float | None = Field(default=None, ge=0)
    """Validation: 95th percentile latency of searches on the new collection, in milliseconds."""


class BatchMetrics(ApiModel):
    """One finished batch's quality, as the RollbackPolicy triggers read it."""

    batch: int = Field(ge=0)
    """Batch number."""
    sequence: int | None = Field(default=None, ge=1)
    """The order in which the plan took in its finished batches (1, 2, ...)."""
    coherence: float | None = Field(default=None, ge=MIN_COHERENCE, le=MAX_COHERENCE)
    """Mean coherence of the batch's sampled records (-1..1)."""
    coherence_min: float | None = Field(default=None, ge=MIN_COHERENCE, le=MAX_COHERENCE)
    """Lowest coherence of the batch's sampled records."""
    coherence_max: float | None = Field(default=None, ge=MIN_COHERENCE, le=MAX_COHERENCE)
    """Highest coherence of the batch's sampled records."""
    records: int | None = Field(default=None, ge=0)
    """Records the batch read."""
    seconds: float | None = Field(default=None, ge=0)
    """How long the batch's worker ran."""
    finished_at: datetime | None = None
    """When the plan took the batch in."""
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    """Share of the batch's records that were skipped."""
    processing_time_ms: float | None = Field(default=None, ge=0)
    """95th percentile micro-batch encode time of the batch, in milliseconds."""


class PlanRollback(ApiModel):
    """A rollback of this plan: by a RollbackPolicy, or asked for by a human (spec.rollback)."""

    policy: str = Field(max_length=253)
    """The RollbackPolicy that fired, or "manual"."""
    trigger: str = Field(max_length=256)
    """What fired, e.g. "coherence below 0.85 for 2 batches"."""
    metric: str | None = Field(default=None, max_length=64)
    """The trigger's metric."""
    threshold: float | None = None
    """The trigger's threshold."""
    observed_value: float | None = None
    """The value that crossed it."""
    phase: str = Field(max_length=32)
    """The plan's phase when it fired (PostCutover: after the alias swing)."""
    actions: list[RollbackAction] = Field(max_length=4, json_schema_extra=list_type("atomic"))
    """The actions to run, in order."""
    steps: list[ActionStep] = Field(default_factory=list, max_length=8, json_schema_extra=list_type("atomic"))
    """The actions done so far, with their results."""
    executed_at: datetime
    """When it fired."""
    completed: bool = False
    """All actions ran (an operator restarted before that finishes the rest, and only the rest)."""
    resumed_at: datetime | None = None
    """When a human resumed the plan after this execution paused it; the policies guard it again
    from then on, over batches finished after that."""


class BatchFailure(ApiModel):
    """One failed batch attempt."""

    batch: int = Field(ge=0)
    """Batch number."""
    reason: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """Why, as a CamelCase word, e.g. QualityGateFailed."""
    message: str = Field(default="", max_length=1024)
    """What happened, for a human."""
    time: datetime
    """When the failure was seen."""


COMPACT_RANGES_PATTERN = r"^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$"


MAX_RECOMMENDATIONS = 10


class PlanAnomalies(ApiModel):
    """Anomalies the workers counted in their samples, over all batches (none is written: these
    are vectors that were written but look suspicious)."""

    norm_outliers: int | None = Field(default=None, ge=0)
    """Vectors whose length is far from the batch's typical length."""
    duplicate_vectors: int | None = Field(default=None, ge=0)
    """Vectors identical to another one of a different text."""
    collapsed_batches: int | None = Field(default=None, ge=0)
    """Batches whose sampled vectors all point the same way (the model collapsed)."""


class OperatorPause(ApiModel):
    """A pause the operator decided on its own (a RollbackPolicy's Pause action)."""

    by: str = Field(min_length=1, max_length=253)
    """Who paused: RollbackPolicy/<name>."""
    message: str = Field(default="", max_length=1024)
    """Why, and how to resume."""
    since: datetime
    """When the plan was paused."""


class PinnedTarget(ApiModel):
    """The VectorCollection spec this plan works with, recorded when it prepared, so that editing
    the collection mid-run never mixes two models or layouts in one physical collection."""

    uid: str = Field(max_length=64)
    """The VectorCollection's uid."""
    generation: int = Field(ge=0)
    """The metadata.generation of the spec that was pinned (kept in the plan's ConfigMap)."""
    pinned_at: datetime
    """When it was pinned."""


class PostCutoverFigures(ApiModel):
    """Measured on the new collection after the alias swing, for PostCutover triggers."""

    recall_at_k: float | None = Field(default=None, ge=0, le=1)
    """recall@10 of the serving search against an exhaustive one, for sampled stored vectors."""
    search_latency_p95_ms: float | None = Field(default=None, ge=0)
    """95th percentile latency of those searches, in milliseconds."""
    measured_at: datetime | None = None
    """When they were measured."""
    window_ends_at: datetime | None = None
    """When the last guarding policy's postCutoverWindow closes (as the policies stood at the
    cutover); the collection served before is kept at least until then."""


class MigrationPlanStatus(ApiModel):
    """The observed state of the plan, written by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status reflects."""
    phase: MigrationPhase | None = None
    """Pending, Planning, Preparing, Generating, Validating, CuttingOver, Syncing, Succeeded,
    Failed, RolledBack or Paused."""
    conditions: Conditions | None = None
    """Approved, Progressing, QualityDegraded, Complete, Failed, RolledBack and InSync."""
    progress: MigrationProgress | None = None
    """Batches and records done."""
    throughput: Throughput | None = None
    """Recent speed."""
    sizing: JobSizing | None = None
    """The Jobs' size and how many run at once, as planned (batching's auto or the spec's numbers)."""
    quality: MigrationQuality | None = None
    """Quality so far."""
    completed_ranges: str | None = Field(
        default=None,
        max_length=MAX_COMPLETED_RANGES_LENGTH,
        pattern=COMPACT_RANGES_PATTERN,
    )
    """Batches done, as compact ranges of batch numbers, e.g. 0-99,120-130."""
    failed_ranges: str | None = Field(
        default=None, max_length=MAX_COMPLETED_RANGES_LENGTH, pattern=COMPACT_RANGES_PATTERN
    )
    """Batches that failed for good (retries exhausted, or the quality gate), e.g. 3,7-9: raise
    spec.retry to run only them again."""
    observed_retry: int | None = Field(default=None, ge=0)
    """The spec.retry last acted on; Jobs of a retry carry it in their names."""
    recent_failures: list[BatchFailure] | None = Field(
        default=None, max_length=MAX_RECENT_FAILURES, json_schema_extra=list_type("atomic")
    )
    """The latest failed batch attempts, newest last (at most 20)."""
    previous_physical_collection: str | None = Field(default=None, max_length=255)
    """The physical collection the alias pointed at before this plan: what a rollback restores."""
    new_physical_collection: str | None = Field(default=None, max_length=255)
    """The physical collection this plan fills (BlueGreen)."""
    started_at: datetime | None = None
    """When Generating began."""
    completed_at: datetime | None = None
    """When the plan reached Succeeded, Failed or RolledBack."""
    cut_over_at: datetime | None = None
    """When the alias swung to the new collection (BlueGreen)."""
    recent_batches: list[BatchMetrics] | None = Field(
        default=None, max_length=MAX_RECENT_BATCHES, json_schema_extra=list_type("atomic")
    )
    """Quality of the latest finished batches, in the order they finished (at most 32)."""
    trigger_since: dict[str, datetime] | None = Field(default=None, max_length=512)
    """For duration triggers: since when each crossed its threshold ("<policy>/<trigger index>")."""
    batches_folded: int | None = Field(default=None, ge=0)
    """How many finished batches the plan has taken in (the sequence of recentBatches)."""
    guard_armed_after: int | None = Field(default=None, ge=0)
    """Batch triggers read only batches taken in after this many (set when a human resumes a plan
    a policy paused, so the same batches never fire twice)."""
    rollback: PlanRollback | None = None
    """The latest rollback of this plan (policy or manual), recorded step by step."""
    pause: OperatorPause | None = None
    """A pause a RollbackPolicy decided; cleared when a human resumes (spec.paused true then false,
    or by removing this field)."""
    target: PinnedTarget | None = None
    """The VectorCollection spec this plan works with, pinned when it prepared."""
    post_cutover: PostCutoverFigures | None = None
    """Figures measured on the new collection after the cutover, while a policy's window is open."""
    previous_retired_at: datetime | None = None
    """When the collection the alias served before was dropped (after the retention)."""
    recommendations: list[Annotated[str, Field(max_length=512)]] | None = Field(
        default=None, max_length=MAX_RECOMMENDATIONS, json_schema_extra=list_type("atomic")
    )
    """What the workers recommend changing, the latest batch's first (at most 10)."""
    anomalies: PlanAnomalies | None = None
    """Anomalies the workers counted in their samples."""
    sync: SyncStatus | None = None
    """The catch-up and the continuous sync: watermark, lag, changes applied."""
    backup: BackupStatus | None = None
    """The backup exported before the plan changed anything: where, rows, checksum."""
    kopf: PreservedObject | None = None
    """Kopf's bookkeeping; not for users."""


class MigrationPlan(ApiModel):
    """A MigrationPlan as stored by the API server."""

    api_version: Literal["vectors.aios.dev/v1alpha1"] = API_VERSION
    """vectors.aios.dev/v1alpha1"""
    kind: Literal["MigrationPlan"] = "MigrationPlan"
    """MigrationPlan"""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
    spec: MigrationPlanSpec
    """The desired migration."""
    status: MigrationPlanStatus | None = None
    """The observed state."""


KIND = ResourceKind(
    kind="MigrationPlan",
    plural="migrationplans",
    short_names=("mplan",),
    description="Fills a VectorCollection from a source (an SQL table or files) in batches of "
    "embedding Jobs, with quality gates per batch, then validates and swings the collection's "
    "alias (BlueGreen) or writes in place.",
    spec=MigrationPlanSpec,
    status=MigrationPlanStatus,
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", "string", "Where the plan stands."),
        PrinterColumn("Progress", ".status.progress.summary", "string", "Succeeded batches / total batches."),
        PrinterColumn(
            "Coherence", ".status.quality.coherence.mean", "number", "Mean coherence of sampled records."
        ),
        PrinterColumn("Target", ".spec.targetRef.name", "string", "The VectorCollection it fills."),
        PrinterColumn("Mode", ".spec.mode", "string", "BlueGreen or InPlace.", priority=1),
        PrinterColumn("Records", ".status.progress.recordsDone", "integer", "Records written.", priority=1),
        AGE,
    ),
)
