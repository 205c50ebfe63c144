"""Asking a Milvus server which index types it really builds (see
:mod:`vector_operator.collection.index_support`): every type is built synchronously on a tiny
scratch collection, whose build error is the server's own answer; the collection is dropped after.
The answer is kept per server URI and version for the operator's lifetime."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from vector_operator.api.vectorcollection import IndexType
from vector_operator.collection.index_support import IndexSupport
from vector_operator.collection.milvus_layout import PRIMARY_KEY_FIELD, VECTOR_FIELD

PROBE_PREFIX = "vector_operator_index_probe_"
PROBE_DIMENSION = 8
PROBE_ROWS = 512
PROBE_QUERIES = 8
HONOURED_RECALL = 0.8
"""With nlist 1 and nprobe 1 an IVF search visits every vector: recall@10 near 1 (IVF_SQ8's
quantization costs a little). Far below, the server built its own lists, whatever nlist said."""
NLIST_CHECKED = (IndexType.IVF_FLAT, IndexType.IVF_SQ8)
CALL_TIMEOUT_S = 60.0
# The smallest parameters each type accepts; the probe is about the type, not its parameters.
PROBE_PARAMS: dict[str, dict[str, int]] = {
    IndexType.FLAT: {},
    IndexType.IVF_FLAT: {"nlist": 1},  # one list: a search of it is exhaustive, if nlist is honoured
    IndexType.IVF_SQ8: {"nlist": 1},
    IndexType.IVF_PQ: {"nlist": 4, "m": 2, "nbits": 4},
    IndexType.HNSW: {"M": 4, "efConstruction": 8},
    IndexType.DISKANN: {},
    IndexType.AUTOINDEX: {},
}


RETRY_PROBE_S = 300.0
"""After a probe that could not run (no right to create a collection, a quota), refuse nothing and
ask again this much later."""
VERSION_TTL_S = 60.0
"""How long a client's server version is taken as known (the probe's answer is per version)."""
LEFTOVER_AGE_S = 600
"""A probe collection older than this was left by a probe cut short (a restart): dropped."""


class IndexSupportCache:
    """One probe per server URI and version, shared by every reconcile of the operator."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], IndexSupport] = {}
        self._failed: dict[tuple[str, str], float] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._versions: weakref.WeakKeyDictionary[MilvusClient, tuple[str, float]] = (
            weakref.WeakKeyDictionary()
        )
        """Each client's server version and when it was asked: not once per reconcile (500
        collections applied at once asked 500 times), but again after VERSION_TTL_S (an upgrade)."""
        self._guard = threading.Lock()

    def get(self, uri: str, client: MilvusClient) -> IndexSupport | None:
        """What the server builds; None when it could not be asked (nothing is refused then)."""
        now = time.monotonic()
        with self._guard:
            version, asked = self._versions.get(client, ("", -VERSION_TTL_S))
        if now - asked >= VERSION_TTL_S:
            version = str(client.get_server_version(timeout=CALL_TIMEOUT_S))
            with self._guard:
                self._versions[client] = (version, now)
        key = (uri, version)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one probe per server: concurrent reconciles wait for the first's answer
            if key in self._known:
                return self._known[key]
            if time.monotonic() < self._failed.get(key, -RETRY_PROBE_S) + RETRY_PROBE_S:
                return None
            try:
                self._known[key] = probe(client, key[1])
            except MilvusException as error:
                client.list_collections(timeout=CALL_TIMEOUT_S)  # an outage raises: not a refusal
                self._failed[key] = time.monotonic()
                logging.getLogger(__name__).warning(
                    f"could not ask {uri} which index types it builds ({error.message}): refusing none,"
                    f" asking again in {int(RETRY_PROBE_S)} s"
                )
                return None
            return self._known[key]


class _ThisThreadsRefusals(logging.Filter):
    """Drops pymilvus's ERROR records of the probing thread: a refused type is the answer sought,
    not a fault for the operator's log."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


@contextmanager
def _quiet_refusals() -> Iterator[None]:
    logger = logging.getLogger("pymilvus.decorators")
    refusals = _ThisThreadsRefusals()
    logger.addFilter(refusals)
    try:
        yield
    finally:
        logger.removeFilter(refusals)


def probe(client: MilvusClient, version: str) -> IndexSupport:
    """Builds every index type once on a scratch collection and records what the server did."""
    now = int(time.time())
    for leftover in client.list_collections(timeout=CALL_TIMEOUT_S):
        started = leftover.removeprefix(PROBE_PREFIX).split("_")[0]
        if leftover.startswith(PROBE_PREFIX) and started.isdigit() and now - int(started) > LEFTOVER_AGE_S:
            client.drop_collection(leftover, timeout=CALL_TIMEOUT_S)  # cut short by a restart
    name = f"{PROBE_PREFIX}{now}_{secrets.token_hex(4)}"
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(PRIMARY_KEY_FIELD, DataType.INT64, is_primary=True)
    schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=PROBE_DIMENSION)
    client.create_collection(name, schema=schema, timeout=CALL_TIMEOUT_S)
    built: set[str] = set()
    refused: dict[str, str] = {}
    ignored: dict[str, tuple[str, ...]] = {}
    try:
        vectors = np.random.default_rng(0).standard_normal((PROBE_ROWS, PROBE_DIMENSION)).astype(np.float32)
        client.insert(
            name,
            [{PRIMARY_KEY_FIELD: i, VECTOR_FIELD: v.tolist()} for i, v in enumerate(vectors)],
            timeout=CALL_TIMEOUT_S,
        )
        client.flush(name, timeout=CALL_TIMEOUT_S)
        for index_type, params in PROBE_PARAMS.items():
            index = client.prepare_index_params()
            index.add_index(field_name=VECTOR_FIELD, index_type=index_type, metric_type="L2", params=params)
            try:
                with _quiet_refusals():
                    client.create_index(name, index, timeout=CALL_TIMEOUT_S, sync=True)
                built.add(str(index_type))
                if index_type in NLIST_CHECKED and not _nlist_honoured(client, name, vectors):
                    ignored[str(index_type)] = ("nlist",)
            except MilvusException as error:
                refused[str(index_type)] = str(error.message)[:300]
            client.release_collection(name, timeout=CALL_TIMEOUT_S)  # an index is dropped unloaded
            for existing in client.list_indexes(name, timeout=CALL_TIMEOUT_S):
                client.drop_index(name, existing, timeout=CALL_TIMEOUT_S)
    finally:
        client.drop_collection(name, timeout=CALL_TIMEOUT_S)
    return IndexSupport(server=version, built=frozenset(built), refused=refused, ignored=ignored)


def _nlist_honoured(client: MilvusClient, name: str, vectors: np.ndarray[Any, Any]) -> bool:
    """Whether the IVF index just built with nlist 1 searches exhaustively at nprobe 1."""
    client.load_collection(name, timeout=CALL_TIMEOUT_S)
    queries = vectors[:PROBE_QUERIES]
    distances = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
    exact = np.argsort(distances, axis=1)[:, :10]
    hits = client.search(
        name,
        data=[q.tolist() for q in queries],
        limit=10,
        search_params={"metric_type": "L2", "params": {"nprobe": 1}},
        anns_field=VECTOR_FIELD,
        timeout=CALL_TIMEOUT_S,
    )
    found = [
        len({hit["id"] for hit in row} & set(truth.tolist())) / 10
        for row, truth in zip(hits, exact, strict=True)
    ]
    return float(np.mean(found)) >= HONOURED_RECALL
