"""The worker's assignment for one batch, from the plan, its target collection and the batch's
key range. It names environment variables for credentials, never their values."""

from __future__ import annotations

from typing import Any

from vector_operator.api.migrationplan import MigrationPlanSpec
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.migration.batch_jobs import MILVUS_TOKEN_ENV, SOURCE_URL_ENV
from vector_operator.worker.assignment import WorkerAssignment

Key = int | str


class UnsupportedSource(Exception):
    """The plan's source cannot be run by the controller yet; the message says what to use."""


def batch_assignment(
    *,
    namespace: str,
    plan: str,
    index: int,
    plan_spec: MigrationPlanSpec,
    collection_spec: VectorCollectionSpec,
    milvus_uri: str,
    physical: str,
    key_range: tuple[Key | None, Key | None],
) -> dict[str, Any]:
    sql = plan_spec.source.sql
    if sql is None:
        raise UnsupportedSource(
            "the MigrationPlan controller plans SQL sources only for now: use source.sql"
            " (files sources run through `vector-operator worker` directly)"
        )
    layout = layout_of(collection_spec)
    embedding = collection_spec.embedding
    encode = plan_spec.batching.encode
    start, end = key_range
    document: dict[str, Any] = {
        "batch": {"namespace": namespace, "plan": plan, "index": index},
        "milvus": {
            "uri": milvus_uri,
            "database": collection_spec.milvus.database,
            "tokenEnv": MILVUS_TOKEN_ENV if collection_spec.milvus.secret_ref else None,
        },
        "collection": {
            "name": physical,
            "primaryKey": {
                "type": collection_spec.primary_key.type.value,
                "maxLength": layout.primary_key_max_length,
            },
            "dimension": collection_spec.dimension,
            "metricType": collection_spec.metric_type.value,
            "scalarFields": [
                {"name": f.name, "type": f.type, "maxLength": f.max_length} for f in layout.fields
            ],
            "searchParams": layout.search_params,
        },
        "source": {
            "sql": {
                "urlEnv": SOURCE_URL_ENV,
                "table": sql.table,
                "primaryKey": sql.primary_key,
                "textColumns": sql.text_columns,
                "textTemplate": sql.text_template,
                "fields": sql.fields or {},
            }
        },
        "keyRange": {"start": start, "end": end},
        "model": {
            "name": embedding.model,
            "normalize": embedding.normalize,
            "device": embedding.device.value,
            "truncateDim": embedding.truncate_dim,
            "maxSeqLength": embedding.max_seq_length,
        },
        "encode": {
            "minBatchSize": encode.min_batch_size,
            "maxBatchSize": encode.max_batch_size,
            "targetBatchLatencyMs": encode.target_batch_latency_ms,
        },
        "quality": {"sampleSize": plan_spec.quality.sample_size},
    }
    # Validated here, so a mistake shows up in the plan's status and not in a failing pod.
    validated = WorkerAssignment.model_validate(document)
    out: dict[str, Any] = validated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out
