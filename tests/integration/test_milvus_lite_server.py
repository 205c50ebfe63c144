"""The Milvus Lite server fixture is a real gRPC Milvus that pymilvus talks to."""

from __future__ import annotations

import pytest
from pymilvus import DataType

from localcluster.milvus_lite import MilvusLiteServer

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
