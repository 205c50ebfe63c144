"""The Milvus Lite server fixture is a real gRPC Milvus that pymilvus talks to."""

from __future__ import annotations

import threading

import pytest
from pymilvus import DataType
from pymilvus.exceptions import MilvusException

from localcluster.milvus_lite import MilvusLiteServer
from vector_operator.milvus import collections
from vector_operator.milvus.collections import MilvusCollections, listing_raced_a_drop
from vector_operator.milvus.connection import MilvusClients, MilvusEndpoint

pytestmark = pytest.mark.milvus


def test_create_and_list_a_collection(milvus_server: MilvusLiteServer) -> None:
    assert milvus_server.uri.startswith("http://127.0.0.1:")
    client = milvus_server.client()
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    client.create_collection("fixture_probe", schema=schema, index_params=index)
    try:
        assert "fixture_probe" in client.list_collections()
        client.insert("fixture_probe", [{"id": i, "vector": [float(i)] * 8} for i in range(5)])
        client.flush("fixture_probe")
        client.load_collection("fixture_probe")
        count = client.query("fixture_probe", filter="", output_fields=["count(*)"])
        assert count[0]["count(*)"] == 5
        described = client.describe_collection("fixture_probe")
        vector_field = next(f for f in described["fields"] if f["name"] == "vector")
        assert vector_field["params"]["dim"] == 8
    finally:
        client.drop_collection("fixture_probe")
        client.close()


def test_the_index_types_milvus_lite_really_builds(milvus_server: MilvusLiteServer) -> None:
    """The operator's probe against Milvus Lite 3.2: IVF_PQ is accepted asynchronously and reported
    Finished, yet never built (a synchronous build says so); DISKANN is unknown; nlist is taken
    and ignored (an IVF index with one list does not search exhaustively at nprobe 1)."""
    clients = MilvusClients()
    try:
        milvus = MilvusCollections(clients, MilvusEndpoint(milvus_server.uri), lambda *_: None)
        support = milvus.index_support()
        assert milvus.index_support() is support  # probed once per server and version
    finally:
        clients.close()
    assert support.server.startswith("milvus_lite-3.2")
    assert support.built == {"FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "AUTOINDEX"}
    assert "reserved for a future phase" in support.refused["IVF_PQ"]
    assert "DISKANN" in support.refused
    assert support.ignored == {"IVF_FLAT": ("nlist",), "IVF_SQ8": ("nlist",)}
    client = milvus_server.client()
    try:
        assert not [n for n in client.list_collections() if n.startswith("vector_operator_index_probe_")]
    finally:
        client.close()


def test_listing_collections_while_others_are_dropped(
    milvus_server: MilvusLiteServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Milvus Lite lists the names, then reads each one's load state: a collection dropped in
    between fails the whole listing ("collection '<name>' does not exist"). The adapter lists again
    instead of reporting Milvus unavailable (which failed deletions of many collections at once)."""
    client = milvus_server.client()
    names = [f"listing_race_{i:03d}" for i in range(150)]
    for name in names:
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
        client.create_collection(name, schema=schema)
    races: list[str] = []

    def counted(error: MilvusException) -> bool:
        raced = listing_raced_a_drop(error)
        races.append(str(error.message))
        return raced

    monkeypatch.setattr(collections, "listing_raced_a_drop", counted)
    milvus = MilvusCollections(MilvusClients(), MilvusEndpoint(milvus_server.uri), lambda *_: None)
    dropping = threading.Thread(target=lambda: [client.drop_collection(name) for name in names])
    dropping.start()
    try:
        while dropping.is_alive():
            milvus.names()  # raises MilvusUnavailable should a listing fail LIST_ATTEMPTS times
    finally:
        dropping.join()
        client.close()
    assert races, "no listing raced a drop: the test proved nothing"
    assert all("does not exist" in race for race in races)
