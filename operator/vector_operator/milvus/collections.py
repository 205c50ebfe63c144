"""A VectorCollection's Milvus side, observed and changed: the adapter behind
:mod:`vector_operator.collection.reconciliation`'s decisions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.client.types import LoadState
from pymilvus.exceptions import MilvusException

from vector_operator.collection.index_support import IndexSupport
from vector_operator.collection.milvus_layout import (
    CONTENT_HASH_FIELD,
    INDEX_PROPERTY,
    PRIMARY_KEY_FIELD,
    SPACE_PROPERTY,
    VECTOR_FIELD,
    CollectionLayout,
    VectorSpace,
)
from vector_operator.collection.ownership import OWNER_PROPERTY, Claim, Owner
from vector_operator.collection.physical_names import physical_collections, scratch_names
from vector_operator.collection.reconciliation import (
    BuildIndex,
    ClaimOwnership,
    CreateCollection,
    LoadCollection,
    ObservedIndex,
    ObservedMilvus,
    ObservedPhysical,
    PointAlias,
    Step,
)
from vector_operator.contract.sync import SYNC_STATE_PROPERTY, SyncState
from vector_operator.milvus.connection import MilvusClients, MilvusEndpoint, MilvusUnavailable

CALL_TIMEOUT_S = 30.0
LIST_ATTEMPTS = 4
"""Tries of one listing of the collections that races concurrent drops (see listing_raced_a_drop)."""
T = TypeVar("T")


class AliasMoved(Exception):
    """A compare-and-swap on an alias found it pointing elsewhere than expected: nothing changed."""


_SCALAR_TYPES = {
    "VARCHAR": DataType.VARCHAR,
    "INT64": DataType.INT64,
    "INT32": DataType.INT32,
    "FLOAT": DataType.FLOAT,
    "DOUBLE": DataType.DOUBLE,
    "BOOL": DataType.BOOL,
    "JSON": DataType.JSON,
}


@dataclass(frozen=True)
class ValidationFigures:
    entities: int
    retrievability: float | None
    recall_at_k: float | None
    search_latency_p95_ms: float | None
    sampled: int


def _nullable(described: dict[str, Any], field: str) -> bool:
    """Whether the described collection has ``field`` as a nullable field."""
    return any(f["name"] == field and f.get("nullable") for f in described.get("fields", []))


def listing_raced_a_drop(error: MilvusException) -> bool:
    """Whether a failed list_collections only raced a concurrent drop: Milvus Lite lists the names,
    then reads each one's load state, and a collection dropped in between fails the whole listing
    with "collection '<name>' does not exist". Listing again gives the answer."""
    message = str(error.message)
    return message.startswith("collection ") and message.endswith("does not exist")


def _tied_with_self(hits: list[dict[str, Any]], row: dict[str, Any]) -> bool:
    """Whether the record is among the hits at the best score (identical vectors tie)."""
    best = hits[0]["distance"]
    return any(hit["id"] == row[PRIMARY_KEY_FIELD] and abs(hit["distance"] - best) <= 1e-6 for hit in hits)


class MilvusCollections:
    """Milvus operations for one endpoint; every failure becomes :class:`MilvusUnavailable`."""

    def __init__(
        self, clients: MilvusClients, endpoint: MilvusEndpoint, observe_latency: Callable[[str, float], None]
    ):
        self.clients = clients
        self.endpoint = endpoint
        self.observe_latency = observe_latency

    @contextmanager
    def _client(self, what: str) -> Iterator[MilvusClient]:
        client = self.clients.get(self.endpoint)
        started = time.perf_counter()
        try:
            yield client
        except MilvusException as error:
            self.clients.forget(self.endpoint)
            raise MilvusUnavailable(
                f"Milvus at {self.endpoint.display} failed to {what}: {error.message}"
            ) from None
        except MilvusUnavailable:
            raise
        except Exception as error:  # grpc errors of every kind when the server goes away
            self.clients.forget(self.endpoint)
            raise MilvusUnavailable(
                f"Milvus at {self.endpoint.display} failed to {what}: {type(error).__name__}: {error}"[:500]
            ) from None
        finally:
            self.observe_latency(what.split(" ")[0], time.perf_counter() - started)

    def session(self, what: str) -> AbstractContextManager[MilvusClient]:
        """A client for one operation (``what``, for messages); every failure becomes
        :class:`MilvusUnavailable`."""
        return self._client(what)

    # -- observing ------------------------------------------------------------------------------

    def _listed(self, client: MilvusClient) -> list[str]:
        """Every collection's name; a listing that raced a concurrent drop is tried again (up to
        LIST_ATTEMPTS times) before it counts as a failure."""
        for attempt in range(1, LIST_ATTEMPTS + 1):
            try:
                names: list[str] = client.list_collections(timeout=CALL_TIMEOUT_S)
                return names
            except MilvusException as error:
                if attempt == LIST_ATTEMPTS or not listing_raced_a_drop(error):
                    raise
        raise AssertionError("unreachable")

    def observe(self, alias: str) -> ObservedMilvus:
        with self._client("list collections") as client:
            names = self._listed(client)
        physicals = {name: self._observe_physical(name) for name in physical_collections(alias, names)}
        scratch = tuple(name for name in scratch_names(alias) if name in names)
        return ObservedMilvus(
            physicals=physicals, alias_target=self.alias_target(alias, names), scratch=scratch
        )

    def alias_target(self, alias: str, names: list[str] | None = None) -> str | None:
        """What the alias points at, found without provoking Milvus errors for a missing alias."""
        with self._client("list aliases") as client:
            if alias not in client.list_aliases(timeout=CALL_TIMEOUT_S).get("aliases", []):
                return None
            described = client.describe_alias(alias, timeout=CALL_TIMEOUT_S)
        target: str | None = described.get("collection_name")
        return target

    def observe_index(self, name: str) -> ObservedIndex | None:
        """The vector index of ``name`` as Milvus reports it; None when it has none."""
        with self._client(f"describe the index of {name}") as client:
            index_names = client.list_indexes(name, field_name=VECTOR_FIELD, timeout=CALL_TIMEOUT_S)
            if not index_names:
                return None
            raw = client.describe_index(name, index_names[0], timeout=CALL_TIMEOUT_S)
        return ObservedIndex(
            name=index_names[0],
            index_type=str(raw.get("index_type", "")),
            metric=str(raw.get("metric_type", "")),
            state=str(raw.get("state", "")),
            indexed_rows=int(raw.get("indexed_rows", 0)),
            pending_rows=int(raw.get("pending_index_rows", 0)),
            failure=str(raw.get("index_state_fail_reason", "")),
        )

    def _observe_physical(self, name: str) -> ObservedPhysical:
        index = self.observe_index(name)
        with self._client(f"describe {name}") as client:
            described = client.describe_collection(name, timeout=CALL_TIMEOUT_S)
            load_state = client.get_load_state(name, timeout=CALL_TIMEOUT_S).get("state")
        properties: dict[str, str] = described.get("properties") or {}
        dimension = 0
        fields: dict[str, str] = {}
        for field in described.get("fields", []):
            if field["name"] == VECTOR_FIELD:
                dimension = int(field.get("params", {}).get("dim", 0))
            elif field["name"] not in (PRIMARY_KEY_FIELD, CONTENT_HASH_FIELD):  # the operator's own
                fields[field["name"]] = DataType(field["type"]).name
        return ObservedPhysical(
            name=name,
            dimension=dimension,
            space=VectorSpace.from_property(str(properties.get(SPACE_PROPERTY, ""))),
            fields=fields,
            index=index,
            index_fingerprint=properties.get(INDEX_PROPERTY),
            loaded=load_state == LoadState.Loaded,
            owner=Owner.from_property(properties.get(OWNER_PROPERTY)),
        )

    def index_support(self) -> IndexSupport | None:
        """The index types this server really builds (probed once per server and version); None
        when the server could not be asked."""
        with self._client("probe the index types it builds") as client:
            return self.clients.index_support.get(self.endpoint.uri, client)

    def count(self, name: str) -> int:
        """Exact entity count: a count(*) query (row statistics include deleted rows)."""
        with self._client(f"count {name}") as client:
            rows = client.query(name, filter="", output_fields=["count(*)"], timeout=CALL_TIMEOUT_S)
        return int(rows[0]["count(*)"]) if rows else 0

    def sync_state(self, name: str) -> SyncState | None:
        """The sync worker's state kept in the collection's properties; None when the collection is
        gone or no pass has written one."""
        with self._client(f"describe {name}") as client:
            if not client.has_collection(name, timeout=CALL_TIMEOUT_S):
                return None
            described = client.describe_collection(name, timeout=CALL_TIMEOUT_S)
        properties: dict[str, str] = described.get("properties") or {}
        return SyncState.from_property(properties.get(SYNC_STATE_PROPERTY))

    def probe_search_latency(
        self, alias: str, layout: CollectionLayout, queries: int = 20
    ) -> tuple[float, float]:
        """p50 and p95 latency (ms) of canary searches on the alias with the serving parameters."""
        generator = np.random.default_rng(7)
        vectors = generator.standard_normal((queries, layout.space.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        latencies: list[float] = []
        with self._client(f"search {alias}") as client:
            for vector in vectors:
                started = time.perf_counter()
                client.search(
                    alias,
                    data=[vector.tolist()],
                    limit=10,
                    search_params=layout.search_request(),
                    anns_field=VECTOR_FIELD,
                    timeout=CALL_TIMEOUT_S,
                )
                latencies.append((time.perf_counter() - started) * 1000)
        p50, p95 = np.percentile(latencies, [50, 95])
        return float(p50), float(p95)

    # -- changing -------------------------------------------------------------------------------

    def apply(self, step: Step, alias: str, layout: CollectionLayout) -> None:
        match step:
            case CreateCollection(name, owner):
                self._create(name, layout, owner)
            case ClaimOwnership(name, owner):
                with self._client(f"record the owner of {name}") as client:
                    client.alter_collection_properties(
                        name, properties={OWNER_PROPERTY: owner.to_property()}, timeout=CALL_TIMEOUT_S
                    )
            case BuildIndex(name, replace):
                self._build_index(name, layout, replace)
            case LoadCollection(name):
                with self._client(f"load {name}") as client:
                    client.load_collection(name, timeout=CALL_TIMEOUT_S)
            case PointAlias(name, exists):
                with (
                    self.clients.alias_lock(self.endpoint),
                    self._client(f"point alias {alias} at {name}") as client,
                ):
                    if exists:
                        client.alter_alias(name, alias, timeout=CALL_TIMEOUT_S)
                    else:
                        client.create_alias(name, alias, timeout=CALL_TIMEOUT_S)

    def create(self, name: str, layout: CollectionLayout, owner: Owner) -> None:
        """A new physical collection with the layout's schema and index, owned by ``owner``,
        loaded. An existing one is left as it is (a repeated step after a restart)."""
        if name not in self.names():
            self._create(name, layout, owner)
        with self._client(f"load {name}") as client:
            client.load_collection(name, timeout=CALL_TIMEOUT_S)

    def swing_alias(self, alias: str, to: str, expected: str | None) -> bool:
        """Points ``alias`` at ``to`` if it points at ``expected`` now (a compare-and-swap, under
        the endpoint's alias lock). True when it moved, False when it already pointed at ``to``;
        AliasMoved when it points elsewhere."""
        with self.clients.alias_lock(self.endpoint):
            current = self.alias_target(alias)
            if current == to:
                return False
            if current != expected:
                raise AliasMoved(
                    f"alias {alias} points at {current}, not {expected} as expected: left unchanged"
                )
            with self._client(f"point alias {alias} at {to}") as client:
                if current is None:
                    client.create_alias(to, alias, timeout=CALL_TIMEOUT_S)
                else:
                    client.alter_alias(to, alias, timeout=CALL_TIMEOUT_S)
        return True

    def _create(self, name: str, layout: CollectionLayout, owner: Owner) -> None:
        with self._client(f"create {name}") as client:
            self._create_schema(client, name, layout, owner, content_hash=True)
            if not _nullable(client.describe_collection(name, timeout=CALL_TIMEOUT_S), CONTENT_HASH_FIELD):
                # A server without nullable fields (Milvus before 2.5) would refuse every write that
                # does not set content_hash, an application's own too: none, then. A sync then embeds
                # every changed row again, as it cannot tell an unchanged text.
                client.drop_collection(name, timeout=CALL_TIMEOUT_S)
                self._create_schema(client, name, layout, owner, content_hash=False)
        self._build_index(name, layout, replace=None)

    @staticmethod
    def _create_schema(
        client: MilvusClient, name: str, layout: CollectionLayout, owner: Owner, *, content_hash: bool
    ) -> None:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        if layout.primary_key_max_length is None:
            schema.add_field(PRIMARY_KEY_FIELD, DataType.INT64, is_primary=True)
        else:
            schema.add_field(
                PRIMARY_KEY_FIELD,
                DataType.VARCHAR,
                is_primary=True,
                max_length=layout.primary_key_max_length,
            )
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=layout.space.dimension)
        if content_hash:
            schema.add_field(CONTENT_HASH_FIELD, DataType.INT64, nullable=True)  # see contract.content_hash
        for field in layout.fields:
            extra: dict[str, Any] = {"max_length": field.max_length} if field.max_length else {}
            schema.add_field(field.name, _SCALAR_TYPES[field.type], nullable=True, **extra)
        client.create_collection(
            name,
            schema=schema,
            properties={SPACE_PROPERTY: layout.space.to_property(), OWNER_PROPERTY: owner.to_property()},
            timeout=CALL_TIMEOUT_S,
        )

    def _build_index(self, name: str, layout: CollectionLayout, replace: str | None) -> None:
        with self._client(f"build the index of {name}") as client:
            if replace is not None:
                client.release_collection(name, timeout=CALL_TIMEOUT_S)
                client.drop_index(name, replace, timeout=CALL_TIMEOUT_S)
            params = client.prepare_index_params()
            params.add_index(
                field_name=VECTOR_FIELD,
                index_type=layout.index.index_type,
                metric_type=layout.index.metric,
                params=dict(layout.index.params),
            )
            # sync=False: the build runs in Milvus; status reports its progress.
            client.create_index(name, params, timeout=CALL_TIMEOUT_S, sync=False)
            client.alter_collection_properties(
                name, properties={INDEX_PROPERTY: layout.index.fingerprint}, timeout=CALL_TIMEOUT_S
            )

    def names(self) -> list[str]:
        with self._client("list collections") as client:
            return self._listed(client)

    def flush(self, name: str) -> None:
        with self._client(f"flush {name}") as client:
            client.flush(name, timeout=CALL_TIMEOUT_S)

    def drop(self, name: str, owner: Owner) -> bool:
        """Drops one collection if it is ``owner``'s; False when it did not exist or is not."""
        with self._client(f"drop {name}") as client:
            if not client.has_collection(name, timeout=CALL_TIMEOUT_S):
                return False
        if self._observe_physical(name).claim_by(owner) is Claim.FOREIGN:
            return False
        with self._client(f"drop {name}") as client:
            client.drop_collection(name, timeout=CALL_TIMEOUT_S)
        return True

    def validation_probe(
        self, name: str, layout: CollectionLayout, sample_size: int, k: int = 10
    ) -> ValidationFigures:
        """Collection-level checks on `name`: exact count; for a sample of stored vectors,
        retrievability (searched with the serving parameters, the record itself comes first; ties
        count), recall@k of the serving search against an exhaustive one, and search latency."""
        entities = self.count(name)
        with self._client(f"sample {name}") as client:
            rows = (
                client.query(
                    name,
                    filter="",
                    limit=max(1, min(sample_size, entities)),
                    output_fields=[VECTOR_FIELD],
                    timeout=CALL_TIMEOUT_S,
                )
                if entities
                else []
            )
        if not rows:
            return ValidationFigures(entities, None, None, None, 0)
        exhaustive = dict(layout.search_params)
        if "nprobe" in exhaustive or layout.index.index_type.startswith("IVF"):
            exhaustive["nprobe"] = int(layout.index.params.get("nlist", 65536))
        if "ef" in exhaustive or layout.index.index_type == "HNSW":
            exhaustive["ef"] = max(512, k)
        found_self = 0
        recalls: list[float] = []
        latencies: list[float] = []
        limit = min(k, entities)
        with self._client(f"search {name}") as client:
            for row in rows:
                started = time.perf_counter()
                served = client.search(
                    name,
                    data=[row[VECTOR_FIELD]],
                    limit=limit,
                    search_params=layout.search_request(),
                    anns_field=VECTOR_FIELD,
                    timeout=CALL_TIMEOUT_S,
                )[0]
                latencies.append((time.perf_counter() - started) * 1000)
                exact = client.search(
                    name,
                    data=[row[VECTOR_FIELD]],
                    limit=limit,
                    search_params={"metric_type": layout.space.metric, "params": exhaustive},
                    anns_field=VECTOR_FIELD,
                    timeout=CALL_TIMEOUT_S,
                )[0]
                if served and (served[0]["id"] == row[PRIMARY_KEY_FIELD] or _tied_with_self(served, row)):
                    found_self += 1
                wanted = {hit["id"] for hit in exact}
                recalls.append(len(wanted & {hit["id"] for hit in served}) / len(wanted) if wanted else 1.0)
        return ValidationFigures(
            entities=entities,
            retrievability=found_self / len(rows),
            recall_at_k=float(np.mean(recalls)),
            search_latency_p95_ms=float(np.percentile(latencies, 95)),
            sampled=len(rows),
        )

    def drop_all(self, alias: str, owner: Owner) -> list[str]:
        """Drops every `<alias>__v<N>` that is ``owner``'s, and the alias when it points at one of
        them; another VectorCollection's collections and alias stay. Returns what was dropped."""
        observed = self.observe(alias)
        mine = [n for n, p in sorted(observed.physicals.items()) if p.claim_by(owner) is not Claim.FOREIGN]
        existing = set(self.names())
        for scratch in scratch_names(alias):  # a tuning study's, should one have been cut short
            if scratch in existing and self._observe_physical(scratch).claim_by(owner) is Claim.MINE:
                mine.append(scratch)
        with self._client(f"drop {alias}") as client:
            if observed.alias_target in mine:
                with self.clients.alias_lock(self.endpoint):
                    client.drop_alias(alias, timeout=CALL_TIMEOUT_S)
            for name in mine:
                client.drop_collection(name, timeout=CALL_TIMEOUT_S)
        return mine
