"""The Arrow schema of a backup's Parquet files, defined once for the export that writes them, the
verification that checks them and the restore that reads them.

Columns, in order: the primary key ``id`` (int64 or string), the ``vector`` as a fixed-size list
of float32 (the collection's dimension: Milvus's FLOAT_VECTOR bit for bit), every scalar field as
its nearest Arrow type (JSON as Arrow's canonical JSON extension type, i.e. the JSON text; Parquet
stores it with its JSON logical type), and ``content_hash`` (int64) when the collection keeps one.
The key and the vector are never null; scalar fields and content_hash may be (Milvus's are
nullable)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from vector_operator.api.vectorcollection import (
    CONTENT_HASH_FIELD,
    PRIMARY_KEY_FIELD,
    VECTOR_FIELD,
    PrimaryKeyType,
    ScalarField,
    ScalarFieldType,
)
from vector_operator.contract.backup_manifest import BackupManifest

KEY_TYPES: dict[PrimaryKeyType, pa.DataType] = {
    PrimaryKeyType.INT64: pa.int64(),
    PrimaryKeyType.VARCHAR: pa.string(),
}
SCALAR_TYPES: dict[ScalarFieldType, pa.DataType] = {
    ScalarFieldType.VARCHAR: pa.string(),
    ScalarFieldType.INT64: pa.int64(),
    ScalarFieldType.INT32: pa.int32(),
    ScalarFieldType.FLOAT: pa.float32(),
    ScalarFieldType.DOUBLE: pa.float64(),
    ScalarFieldType.BOOL: pa.bool_(),
    ScalarFieldType.JSON: pa.json_(),
}


def vector_type(dimension: int) -> pa.DataType:
    """The vector column's type: ``dimension`` float32 values per row."""
    return pa.list_(pa.float32(), dimension)


def backup_schema(
    *,
    key_type: PrimaryKeyType,
    dimension: int,
    scalar_fields: Sequence[ScalarField],
    content_hash: bool,
) -> pa.Schema:
    """The schema every Parquet file of such a backup has."""
    fields = [
        pa.field(PRIMARY_KEY_FIELD, KEY_TYPES[key_type], nullable=False),
        pa.field(VECTOR_FIELD, vector_type(dimension), nullable=False),
        *(pa.field(field.name, SCALAR_TYPES[field.type]) for field in scalar_fields),
    ]
    if content_hash:
        fields.append(pa.field(CONTENT_HASH_FIELD, pa.int64()))
    return pa.schema(fields)


def manifest_schema(manifest: BackupManifest) -> pa.Schema:
    """The schema the files of the backup ``manifest`` describes have."""
    return backup_schema(
        key_type=manifest.primary_key.type,
        dimension=manifest.dimension,
        scalar_fields=manifest.scalar_fields,
        content_hash=manifest.content_hash,
    )
