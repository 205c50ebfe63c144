"""Asking a Milvus server which index types it really builds (see
:mod:`vector_operator.collection.index_support`): every type is built synchronously on a tiny
scratch collection, whose build error is the server's own answer; the collection is dropped after.
The answer is kept per server URI and version for the operator's lifetime."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from vector_operator.api.vectorcollection import IndexType
from vector_operator.collection.index_support import IndexSupport
from vector_operator.collection.milvus_layout import PRIMARY_KEY_FIELD, VECTOR_FIELD

PROBE_PREFIX = "vector_operator_index_probe_"
PROBE_DIMENSION = 8
PROBE_ROWS = 512
CALL_TIMEOUT_S = 60.0
# The smallest parameters each type accepts; the probe is about the type, not its parameters.
PROBE_PARAMS: dict[str, dict[str, int]] = {
    IndexType.FLAT: {},
    IndexType.IVF_FLAT: {"nlist": 4},
    IndexType.IVF_SQ8: {"nlist": 4},
    IndexType.IVF_PQ: {"nlist": 4, "m": 2, "nbits": 4},
    IndexType.HNSW: {"M": 4, "efConstruction": 8},
    IndexType.DISKANN: {},
    IndexType.AUTOINDEX: {},
}


class IndexSupportCache:
    """One probe per server URI and version, shared by every reconcile of the operator."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], IndexSupport] = {}
        self._lock = threading.Lock()

    def get(self, uri: str, client: MilvusClient) -> IndexSupport:
        version = str(client.get_server_version(timeout=CALL_TIMEOUT_S))
        with self._lock:  # one probe at a time: concurrent reconciles wait for the first's answer
            known = self._known.get((uri, version))
            if known is None:
                known = probe(client, version)
                self._known[(uri, version)] = known
            return known


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
    for leftover in client.list_collections(timeout=CALL_TIMEOUT_S):
        if leftover.startswith(PROBE_PREFIX):  # a probe cut short by a restart
            client.drop_collection(leftover, timeout=CALL_TIMEOUT_S)
    name = PROBE_PREFIX + secrets.token_hex(4)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(PRIMARY_KEY_FIELD, DataType.INT64, is_primary=True)
    schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=PROBE_DIMENSION)
    client.create_collection(name, schema=schema, timeout=CALL_TIMEOUT_S)
    built: set[str] = set()
    refused: dict[str, str] = {}
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
                built.add(index_type)
            except MilvusException as error:
                refused[index_type] = error.message[:300]
            client.release_collection(name, timeout=CALL_TIMEOUT_S)  # an index is dropped unloaded
            for existing in client.list_indexes(name, timeout=CALL_TIMEOUT_S):
                client.drop_index(name, existing, timeout=CALL_TIMEOUT_S)
    finally:
        client.drop_collection(name, timeout=CALL_TIMEOUT_S)
    return IndexSupport(server=version, built=frozenset(built), refused=refused)
