"""A VectorCollection's re-index: an index change on a filled collection builds the new index on a
new physical collection, copies the stored vectors and fields into it (never re-embedding), checks
the copy, and swings the alias, so searches on the alias never fail."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from vector_operator.api.model import ApiModel, duration_rule, validations


class ReindexSpec(ApiModel):
    """How an index change on a filled collection is carried out."""

    retention: str = Field(
        default="24h", max_length=32, json_schema_extra=validations(duration_rule("reindex.retention"))
    )
    """How long the physical collection served before a re-index is kept (still loaded) before the
    operator drops it, e.g. 24h or 30m."""
    validation_sample_size: int = Field(default=200, ge=1, le=10000)
    """Stored rows compared field by field between the two collections, and used as queries for
    recall@10 of the new index against exact search (every stored vector scored)."""
    max_vectors_per_second: int | None = Field(default=None, ge=1, le=10_000_000)
    """Cap the copy's rate to spare a busy Milvus; omitted: as fast as Milvus takes it."""
    min_recall_at_k: float | None = Field(default=None, ge=0, le=1)
    """Refuse the swing when the new index's recall@10 (against exact search, on the sample) is
    below this; omitted: recorded, never refused."""


class ReindexState(StrEnum):
    """Where a re-index stands."""

    COPYING = "Copying"
    VALIDATING = "Validating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


class ReindexStatus(ApiModel):
    """The latest re-index: progress while it copies, the figures it validated with, its result."""

    state: ReindexState
    """Copying, Validating, Succeeded, Failed or RolledBack (a RollbackPolicy fired after the swing
    and the alias serves the replaced collection again)."""
    source: str = Field(max_length=255)
    """The physical collection the vectors are copied from (the one that serves meanwhile)."""
    target: str = Field(max_length=255)
    """The new physical collection, built with the new index."""
    index: str = Field(max_length=512)
    """The index being built, e.g. HNSW/COSINE (M=16, efConstruction=200)."""
    index_fingerprint: str = Field(max_length=64)
    """The fingerprint of that index (type, metric, params): a different index starts anew."""
    total: int = Field(default=0, ge=0)
    """Entities in the source when the copy started."""
    copied: int = Field(default=0, ge=0)
    """Entities copied so far (upserts: a page copied twice after a restart counts once here)."""
    resume_after: str | None = Field(default=None, max_length=65535)
    """The last primary key copied, as JSON: a restarted operator continues after it."""
    resumes: int = Field(default=0, ge=0)
    """How many times the copy was resumed after an interruption."""
    copy_seconds: float | None = Field(default=None, ge=0)
    """Time spent copying, summed over resumes."""
    vectors_per_second: float | None = Field(default=None, ge=0)
    """Copy rate: copied / copySeconds."""
    recall_at_k: float | None = Field(default=None, ge=0, le=1)
    """recall@10 of the new index against exact search, on the validation sample."""
    started_at: datetime | None = None
    """When the re-index started."""
    finished_at: datetime | None = None
    """When it succeeded or failed."""
    message: str | None = Field(default=None, max_length=4096)
    """What happened last, for humans."""
    fired: str | None = Field(default=None, max_length=512)
    """The RollbackPolicy trigger that fired on this re-index ("<policy>: <trigger>"), once."""
