"""A MigrationPlan's sync: how the collection keeps up with its source table's changes, during the
backfill (the catch-up before the alias moves) and after it (phase Syncing).

Changes are found by a change column (a timestamp or version every write raises), by PostgreSQL
logical decoding (a replication slot the plan owns), or, without either, by a full check: every
source row's content hash compared with the collection's. Deletes are found by a soft-delete
column, by logical decoding, or by the full check's key diff."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from vector_operator.api.model import ApiModel, Rule, duration_rule, validations

SQL_IDENTIFIER_RE = "^[A-Za-z_][A-Za-z0-9_$]*$"


def _column_rule(what: str) -> Rule:
    return Rule(
        rule=f"self.matches('{SQL_IDENTIFIER_RE}')",
        message=f"{what} must be a plain column name: letters, digits, _ and $, starting with a letter "
        "or an underscore",
    )


class SyncMode(StrEnum):
    """Whether the collection follows its source after the backfill."""

    ONCE = "Once"
    CONTINUOUS = "Continuous"


class ChangeCapture(StrEnum):
    """How changes are found."""

    POLLING = "Polling"
    LOGICAL_DECODING = "LogicalDecoding"


class SyncDeletes(ApiModel):
    """How rows deleted in the source leave the collection."""

    soft_delete_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        json_schema_extra=validations(_column_rule("softDeleteColumn")),
    )
    """A column that is NULL for live rows; a row with a value there is removed from the collection
    (and never embedded by the backfill)."""
    full_check_interval: str | None = Field(
        default=None, max_length=32, json_schema_extra=validations(duration_rule("fullCheckInterval"))
    )
    """How often a full check runs besides the change passes, e.g. 1h: every source key compared
    with the collection's, page by page, so that rows deleted outright (hard deletes) leave it, and
    any change the change column missed is applied. Omitted: only at the catch-up, and only when
    there is neither a changeColumn nor logical decoding (then every pass is a full check)."""


class SyncSpec(ApiModel):
    """Following the source's changes: always caught up once before the alias moves (unless
    catchUp is false), and continuously after it with mode Continuous."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="!(has(self.changeColumn) && has(self.capture) && self.capture == 'LogicalDecoding')",
                message="capture: LogicalDecoding finds changes in the write-ahead log: leave changeColumn "
                "out",
                field_path=".changeColumn",
            ),
            Rule(
                rule="self.mode != 'Continuous' || !has(self.catchUp) || self.catchUp",
                message="mode: Continuous follows the source from the backfill on: catchUp: false is for "
                "mode: Once only",
                field_path=".catchUp",
            ),
        )
    )

    mode: SyncMode = SyncMode.ONCE
    """Once (the default): the backfill, then one catch-up of the writes made during it before the
    alias moves. Continuous: after the cutover the plan stays in phase Syncing and a worker
    Deployment applies every change."""
    capture: ChangeCapture = ChangeCapture.POLLING
    """Polling (the default): every interval, rows whose changeColumn passed the watermark (or, with
    no changeColumn, a full check). LogicalDecoding: PostgreSQL with wal_level=logical only; the plan
    creates a replication slot when it plans (dropped with the plan) and reads the keys of changed
    and deleted rows from it: exact deletes, no change column needed."""
    change_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        json_schema_extra=validations(_column_rule("changeColumn")),
    )
    """A column every insert and update raises: a timestamp (updated_at) or an integer version,
    indexed. Rows whose value is at or past the watermark are read on each pass."""
    interval: str = Field(
        default="10s", max_length=32, json_schema_extra=validations(duration_rule("interval"))
    )
    """How often changes are looked for, e.g. 10s."""
    deletes: SyncDeletes | None = None
    """Soft deletes and the full check."""
    max_lag: str = Field(default="60s", max_length=32, json_schema_extra=validations(duration_rule("maxLag")))
    """The alias moves only once the new collection is this close to the source; while Syncing,
    InSync turns False above it."""
    catch_up: bool = True
    """mode Once: false skips the catch-up, and writes made to the source during the backfill may
    be missing from the new collection when the alias moves."""


class SyncStatus(ApiModel):
    """Where the sync stands (catch-up and Syncing)."""

    watermark: str | None = Field(default=None, max_length=256)
    """The change column's value (or the logical decoding position) up to which changes are applied."""
    synced_through: datetime | None = None
    """Every change committed before this moment is in the collection (the start of the last
    complete pass)."""
    lag_seconds: float | None = Field(default=None, ge=0)
    """Seconds since syncedThrough when the status was written: how stale the collection may be."""
    changes_applied: int | None = Field(default=None, ge=0)
    """Inserted or updated rows written to the collection by the sync."""
    deletes_applied: int | None = Field(default=None, ge=0)
    """Rows removed from the collection by the sync."""
    reembedded: int | None = Field(default=None, ge=0)
    """Changed rows whose text changed, so they were embedded again."""
    reused: int | None = Field(default=None, ge=0)
    """Changed rows whose text (and model) did not change: their stored vector was kept."""
    skipped: int | None = Field(default=None, ge=0)
    """Changed rows not written (empty text, a bad vector...), as the backfill counts them."""
    coherence: float | None = Field(default=None, ge=-1, le=1)
    """Mean coherence of the re-embedded rows the last pass sampled: the cosine between each stored
    vector and a reference encoding of its text (-1..1; 0.99 or more when healthy)."""
    coherence_min: float | None = Field(default=None, ge=-1, le=1)
    """Their lowest coherence."""
    records_per_second: float | None = Field(default=None, ge=0)
    """Changed rows applied per second of work (reading, embedding, writing), over the last passes."""
    full_check_at: datetime | None = None
    """When the last full check finished."""
    worker: str | None = Field(default=None, max_length=253)
    """The Deployment that applies the changes."""
    last_error: str | None = Field(default=None, max_length=1024)
    """The last pass's error, while it fails (the worker retries with back-off)."""
