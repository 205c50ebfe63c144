"""The physical Milvus collection a Job fills or a sync worker keeps up to date: checked against
the assignment, upserted into, flushed, read back for the quality checks; for the sync also read
by key (content hash, scalar fields, vectors), deleted from by key, walked id by id, and the
keeper of the sync's state in a collection property.

Upserts are keyed by the primary key, so a re-run batch overwrites its records instead of
duplicating them. pymilvus retries transient RPC failures itself (within ``timeoutS``).

Reads and deletes by key build their filter expression here (``id in [...]``) instead of using
pymilvus's ``ids=``: pymilvus leaves a backslash in a VARCHAR key unescaped, which Milvus's
expression parser refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient, MilvusException

from vector_operator.api.vectorcollection import CONTENT_HASH_FIELD, PrimaryKeyType
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

KEYS_PER_REQUEST = 500
"""Keys in one ``id in [...]`` expression (a VARCHAR key may be 64 KiB long)."""
ITERATOR_OPTIONS = {"iterator": "True", "reduce_stop_for_best": "True"}
"""What pymilvus's query_iterator sends with each page: Milvus then returns the smallest keys past
the cursor, in key order. A plain query with a limit returns any matching keys, in no order, so
paging on ``id > last`` would skip some."""


@dataclass(frozen=True, slots=True)
class StoredEntity:
    """What the collection holds for one key, as a sync compares it with the source."""

    content_hash: int | None
    """None when the collection has no content_hash field or the entity was written without one."""
    fields: dict[str, object]
    """The scalar fields asked for (a NULL field is absent)."""
    vector: FloatArray | None = None
    """Only when asked for."""


def key_literal(key: Key) -> str:
    """``key`` as a literal of Milvus's filter expressions: an integer, or a double-quoted string
    with backslash, quote and line breaks escaped."""
    if isinstance(key, int):
        return str(key)
    escaped = key.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


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
        self.has_content_hash = False
        """Whether the collection stores a content hash per entity (collections created before it
        do not); known after :meth:`verify`."""
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
        """Checks that the collection exists with the fields the assignment expects, and is loaded;
        learns whether it has a content_hash field."""
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
        content_hash = fields.get(CONTENT_HASH_FIELD)
        if content_hash is not None and content_hash["type"] != DataType.INT64:
            problems.append(f"field {CONTENT_HASH_FIELD} is {DataType(content_hash['type']).name}, not INT64")
        self.has_content_hash = content_hash is not None
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
        try:
            rows = self._client.query(
                self.name, filter=filter_expression, output_fields=["count(*)"], consistency_level=STRONG,
                timeout=self._timeout,
            )  # fmt: skip
        except MilvusException as error:
            raise MilvusUnavailable(f"counting the entities of {self.name} failed: {error.message}") from None
        return int(rows[0]["count(*)"])

    def entity_pages(self, fields: Sequence[str], page_size: int) -> Iterator[list[dict[str, Any]]]:
        """Every entity's ``fields``, in key order, ``page_size`` at a time (Milvus's query
        iterator: memory holds one page)."""
        try:
            iterator = self._client.query_iterator(
                self.name, batch_size=page_size, filter="", output_fields=list(fields),
                consistency_level=STRONG, timeout=self._timeout,
            )  # fmt: skip
        except MilvusException as error:
            raise MilvusUnavailable(f"reading {self.name} failed: {error.message}") from None
        try:
            while True:
                try:
                    page: list[dict[str, Any]] = iterator.next()
                except MilvusException as error:
                    raise MilvusUnavailable(f"reading {self.name} failed: {error.message}") from None
                if not page:
                    return
                yield page
        finally:
            iterator.close()

    def fetch_vectors(self, keys: Sequence[Key]) -> dict[Key, FloatArray]:
        """The stored vector of each of ``keys`` that exists."""
        found = self.stored(keys, [], with_vectors=True)
        return {key: entity.vector for key, entity in found.items() if entity.vector is not None}

    def stored(
        self, keys: Sequence[Key], fields: Sequence[str], *, with_vectors: bool = False
    ) -> dict[Key, StoredEntity]:
        """What the collection holds for each of ``keys`` that exists: its content hash, the scalar
        ``fields``, and the vector when ``with_vectors``."""
        pk, vector = self._collection.primary_key_field, self._collection.vector_field
        output = [pk, *fields]
        if self.has_content_hash:
            output.append(CONTENT_HASH_FIELD)
        if with_vectors:
            output.append(vector)
        found: dict[Key, StoredEntity] = {}
        for start in range(0, len(keys), KEYS_PER_REQUEST):
            chunk = keys[start : start + KEYS_PER_REQUEST]
            try:
                rows = self._client.query(
                    self.name, filter=self._keys_filter(chunk), output_fields=output,
                    consistency_level=STRONG, timeout=self._timeout,
                )  # fmt: skip
            except MilvusException as error:
                raise MilvusUnavailable(
                    f"reading {len(chunk)} entities of {self.name} failed: {error.message}"
                ) from None
            for row in rows:
                found[row[pk]] = StoredEntity(
                    content_hash=row.get(CONTENT_HASH_FIELD),
                    fields={name: row[name] for name in fields if row.get(name) is not None},
                    vector=np.asarray(row[vector], dtype=np.float32) if with_vectors else None,
                )
        return found

    def delete(self, keys: Sequence[Key]) -> None:
        """Deletes the entities of ``keys`` (those that do not exist are no matter)."""
        for start in range(0, len(keys), KEYS_PER_REQUEST):
            chunk = keys[start : start + KEYS_PER_REQUEST]
            try:
                self._client.delete(self.name, filter=self._keys_filter(chunk), timeout=self._timeout)
            except MilvusException as error:
                raise MilvusUnavailable(
                    f"deleting {len(chunk)} entities of {self.name} failed: {error.message}"
                ) from None

    def id_pages(self, page_size: int) -> Iterator[list[Key]]:
        """Every key of the collection, in key order, ``page_size`` at a time (keyset pages: keys
        deleted behind the cursor do not disturb it, and memory holds one page)."""
        pk = self._collection.primary_key_field
        last: Key | None = None
        while True:
            expression = "" if last is None else f"{pk} > {key_literal(last)}"
            try:
                rows = self._client.query(
                    self.name, filter=expression, output_fields=[pk], limit=page_size,
                    consistency_level=STRONG, timeout=self._timeout, **ITERATOR_OPTIONS,
                )  # fmt: skip
            except MilvusException as error:
                raise MilvusUnavailable(f"listing the keys of {self.name} failed: {error.message}") from None
            keys: list[Key] = [row[pk] for row in rows]
            if keys:
                yield keys
            if len(keys) < page_size:
                return
            last = keys[-1]

    def read_property(self, name: str) -> str | None:
        """The collection property ``name``; None when it is not set."""
        try:
            described = self._client.describe_collection(self.name, timeout=self._timeout)
        except MilvusException as error:
            raise MilvusUnavailable(f"Milvus failed to describe {self.name}: {error.message}") from None
        value = (described.get("properties") or {}).get(name)
        return None if value is None else str(value)

    def write_property(self, name: str, value: str) -> None:
        """Sets the collection property ``name`` (the others stay as they are)."""
        try:
            self._client.alter_collection_properties(
                self.name, properties={name: value}, timeout=self._timeout
            )
        except MilvusException as error:
            raise MilvusUnavailable(
                f"writing the property {name} of {self.name} failed: {error.message}"
            ) from None

    def _keys_filter(self, keys: Sequence[Key]) -> str:
        literals = ",".join(key_literal(key) for key in keys)
        return f"{self._collection.primary_key_field} in [{literals}]"

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
