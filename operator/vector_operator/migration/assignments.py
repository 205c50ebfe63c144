"""The worker's assignment for one batch, from the plan, the target's pinned spec and the batch's
key range. It names environment variables for credentials, never their values."""

from __future__ import annotations

from typing import Any

from vector_operator.api.migrationplan import MigrationPlanSpec, SqlTable
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.contract.assignment import (
    BatchIdentity,
    CollectionTarget,
    FileSource,
    KeyRange,
    KeyValue,
    MilvusTarget,
    QualitySettings,
    Source,
    SqlSource,
    WorkerAssignment,
    key_bound,
)
from vector_operator.migration.batch_jobs import MILVUS_CA_FILE, MILVUS_TOKEN_ENV, SOURCE_URL_ENV
from vector_operator.migration.storage_access import restore_files, s3_access


def milvus_target(collection: VectorCollectionSpec, uri: str) -> MilvusTarget:
    """The Milvus a worker writes to; its token by the name of the variable holding it."""
    connection, tls = collection.milvus, collection.milvus.tls
    return MilvusTarget(
        uri=uri,
        database=connection.database,
        token_env=MILVUS_TOKEN_ENV if connection.secret_ref else None,
        tls=bool(tls and tls.enabled) or uri.startswith("https://"),
        ca_file=MILVUS_CA_FILE if tls is not None and tls.ca_secret_ref is not None else None,
        server_name=tls.server_name if tls is not None else None,
    )


def collection_target(collection_spec: VectorCollectionSpec, physical: str) -> CollectionTarget:
    """The physical collection a worker writes, as the pinned spec describes it."""
    return CollectionTarget(
        name=physical,
        primary_key=collection_spec.primary_key,
        dimension=collection_spec.dimension,
        metric_type=collection_spec.metric_type,
        scalar_fields=list(collection_spec.fields or []),
        search_params=dict(layout_of(collection_spec).search_params),
    )


def sql_source(plan_spec: MigrationPlanSpec, sql: SqlTable) -> SqlSource:
    """The plan's table as a worker reads it: its URL by the variable that holds it, soft-deleted
    rows (sync.deletes.softDeleteColumn) never embedded."""
    deletes = plan_spec.sync.deletes
    return SqlSource(
        url_env=SOURCE_URL_ENV,
        soft_delete_column=deletes.soft_delete_column if deletes is not None else None,
        **sql.model_dump(exclude={"url_secret_ref"}, exclude_none=True),
    )


def plan_source(plan_spec: MigrationPlanSpec, collection_spec: VectorCollectionSpec) -> Source:
    """The plan's source as a worker reads it: a table, files (on a claim or S3), or a backup's
    Parquet files with their vectors."""
    sql, files, backup = plan_spec.source.sql, plan_spec.source.files, plan_spec.source.backup
    if sql is not None:
        return Source(sql=sql_source(plan_spec, sql))
    if files is not None:
        shape = files.model_dump(exclude={"s3", "persistent_volume_claim"}, exclude_none=True)
        return Source(files=FileSource(s3=s3_access(files.s3), **shape))
    assert backup is not None  # the API admits exactly one of the three
    return Source(files=restore_files(backup, collection_spec))


def batch_assignment(
    *,
    namespace: str,
    plan: str,
    index: int,
    plan_spec: MigrationPlanSpec,
    collection_spec: VectorCollectionSpec,
    milvus_uri: str,
    physical: str,
    key_range: tuple[KeyValue | None, KeyValue | None],
    start_batch_size: int | None = None,
) -> dict[str, Any]:
    start, end = key_range
    assignment = WorkerAssignment(
        batch=BatchIdentity(namespace=namespace, plan=plan, index=index),
        milvus=milvus_target(collection_spec, milvus_uri),
        collection=collection_target(collection_spec, physical),
        source=plan_source(plan_spec, collection_spec),
        key_range=KeyRange(
            start=None if start is None else key_bound(start), end=None if end is None else key_bound(end)
        ),
        model=collection_spec.embedding,
        encode=plan_spec.batching.encode,
        start_batch_size=start_batch_size,
        quality=QualitySettings(sample_size=plan_spec.quality.sample_size),
    )
    # Validated as a whole here, so a mistake shows up in the plan's status and not in a failing pod.
    validated = WorkerAssignment.model_validate(assignment.model_dump(mode="json", by_alias=True))
    out: dict[str, Any] = validated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out
