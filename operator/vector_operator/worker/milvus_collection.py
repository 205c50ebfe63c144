"""The physical Milvus collection one Job fills: checked against the assignment, upserted into,
flushed, and read back for the quality checks.

Upserts are keyed by the primary key, so a re-run batch overwrites its records instead of
duplicating them. pymilvus retries transient RPC failures itself (within ``timeoutS``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient, MilvusException

from vector_operator.api.vectorcollection import PrimaryKeyType
from vector_operator.api.vectorcollection import ScalarFieldType as ScalarType
from vector_operator.contract.assignment import CollectionTarget, MilvusTarget
from vector_operator.sources.records import Key

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
STRONG = "Strong"
"""Reads see every write acknowledged before them."""

_SCALAR_TYPES = {
    ScalarType.VARCHAR: DataType.VARCHAR,
    ScalarType.INT64: DataType.INT64,
    ScalarType.INT32: DataType.INT32,
    ScalarType.FLOAT: DataType.FLOAT,
    ScalarType.DOUBLE: DataType.DOUBLE,
    ScalarType.BOOL: DataType.BOOL,
    ScalarType.JSON: DataType.JSON,
}

_KEY_TYPES = {PrimaryKeyType.INT64: DataType.INT64, PrimaryKeyType.VARCHAR: DataType.VARCHAR}


class CollectionMismatch(Exception):
    """The collection is missing or differs from the assignment; retrying does not help."""


class MilvusUnavailable(Exception):
    """Milvus cannot be reached or failed a call; retrying may help."""


class MilvusCollection:
    """One physical collection, through one MilvusClient."""

    def __init__(self, milvus: MilvusTarget, collection: CollectionTarget, token: str | None) -> None:
        self.name = collection.name
        self._collection = collection
        self._timeout = milvus.timeout_s
        options: dict[str, Any] = {}
        if milvus.tls or milvus.uri.startswith("https://"):
            options.update(secure=True)
        if milvus.ca_file:
            options.update(secure=True, server_pem_path=milvus.ca_file)
        if milvus.server_name:
            options.update(server_name=milvus.server_name)
        try:
            self._client = MilvusClient(
                uri=milvus.uri,
                token=token or "",
                db_name=milvus.database,
                timeout=milvus.timeout_s,
                **options,
            )
        except MilvusException as error:
            raise MilvusUnavailable(
                f"cannot connect to Milvus at {_without_credentials(milvus.uri)}: {error.message}"
            ) from None

    def close(self) -> None:
        self._client.close()

    def verify(self) -> None:
        """Checks that the collection exists with the fields the assignment expects, and is loaded."""
        target = self._collection
        try:
            if not self._client.has_collection(self.name, timeout=self._timeout):
                raise CollectionMismatch(
                    f"collection {self.name} does not exist: the operator creates it before the Jobs start"
                )
            described = self._client.describe_collection(self.name, timeout=self._timeout)
        except MilvusException as error:
            raise MilvusUnavailable(f"Milvus failed to describe {self.name}: {error.message}") from None
        fields = {field["name"]: field for field in described["fields"]}
        problems: list[str] = []
        primary = fields.get(target.primary_key_field)
        if primary is None or not primary.get("is_primary"):
            problems.append(f"{target.primary_key_field} is not its primary key")
        elif primary["type"] != _KEY_TYPES[target.primary_key.type]:
            problems.append(
                f"its primary key {target.primary_key_field} is {DataType(primary['type']).name}, "
                f"not {target.primary_key.type}"
            )
        vector = fields.get(target.vector_field)
        if vector is None or vector["type"] != DataType.FLOAT_VECTOR:
            problems.append(f"it has no FLOAT_VECTOR field {target.vector_field}")
        elif int(vector["params"].get("dim", 0)) != target.dimension:
            problems.append(
                f"{target.vector_field} has dimension {vector['params'].get('dim')}, not {target.dimension}"
            )
        for scalar in target.scalar_fields:
            found = fields.get(scalar.name)
            if found is None:
                problems.append(f"it has no field {scalar.name}")
            elif found["type"] != _SCALAR_TYPES[scalar.type]:
                problems.append(f"field {scalar.name} is {DataType(found['type']).name}, not {scalar.type}")
        if problems:
            raise CollectionMismatch(
                f"collection {self.name} does not match the assignment: {'; '.join(problems)}"
            )
        try:
            self._client.load_collection(self.name, timeout=self._timeout)
        except MilvusException as error:
            raise MilvusUnavailable(f"Milvus failed to load {self.name}: {error.message}") from None

    def upsert(self, rows: list[dict[str, Any]]) -> int:
        """Writes ``rows`` (primary key, vector, scalar fields); returns how many Milvus took."""
        if not rows:
            return 0
        try:
            result = self._client.upsert(self.name, rows, timeout=self._timeout)
        except MilvusException as error:
            raise MilvusUnavailable(
                f"upsert of {len(rows)} rows into {self.name} failed: {error.message}"
            ) from None
        return int(result["upsert_count"])

    def flush(self) -> None:
        """Seals what was written, so that it is persisted and served from the index."""
        try:
            self._client.flush(self.name, timeout=self._timeout)
        except MilvusException as error:
            raise MilvusUnavailable(f"flush of {self.name} failed: {error.message}") from None

    def count(self, filter_expression: str = "") -> int:
        """The exact number of live entities (a count(*) query, which excludes deleted rows)."""
        rows = self._client.query(
            self.name, filter=filter_expression, output_fields=["count(*)"], consistency_level=STRONG,
            timeout=self._timeout,
        )  # fmt: skip
        return int(rows[0]["count(*)"])

    def fetch_vectors(self, keys: Sequence[Key]) -> dict[Key, FloatArray]:
        """The stored vector of each of ``keys`` that exists."""
        if not keys:
            return {}
        pk, vector = self._collection.primary_key_field, self._collection.vector_field
        try:
            rows = self._client.get(
                self.name,
                ids=list(keys),
                output_fields=[pk, vector],
                consistency_level=STRONG,
                timeout=self._timeout,
            )
        except MilvusException as error:
            raise MilvusUnavailable(
                f"reading vectors back from {self.name} failed: {error.message}"
            ) from None
        return {row[pk]: np.asarray(row[vector], dtype=np.float32) for row in rows}

    def search_best(self, vectors: FloatArray) -> list[tuple[Key, float] | None]:
        """For each vector, the best hit through the index with the serving search parameters."""
        if not len(vectors):
            return []
        pk = self._collection.primary_key_field
        try:
            results = self._client.search(
                self.name,
                data=[vector.tolist() for vector in vectors],
                anns_field=self._collection.vector_field,
                limit=1,
                output_fields=[pk],
                search_params={"params": dict(self._collection.search_params)},
                consistency_level=STRONG,
                timeout=self._timeout,
            )
        except MilvusException as error:
            raise MilvusUnavailable(f"searching {self.name} failed: {error.message}") from None
        return [(hits[0]["id"], float(hits[0]["distance"])) if hits else None for hits in results]


def _without_credentials(uri: str) -> str:
    scheme, separator, rest = uri.partition("://")
    return f"{scheme}{separator}{rest.rpartition('@')[2]}" if separator else uri.rpartition("@")[2]
