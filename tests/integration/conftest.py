"""Fixtures for the embedding worker's integration tests (helpers are in worker_support.py).

- ``postgres`` (session, in tests/conftest.py): a real PostgreSQL on 127.0.0.1.
- ``milvus_client`` (session) and ``new_collection`` (function): physical collections on the
  session's Milvus Lite server, created as the operator would, dropped after the test.
- ``run_worker`` (function): runs `vector-operator worker` in this process as a Job pod would:
  the assignment in $VO_ASSIGNMENT, secrets in the environment, the result read back from the
  termination-message file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymilvus import DataType, MilvusClient
from worker_support import DIMENSION, WorkerRun

from localcluster.milvus_lite import MilvusLiteServer

# -- Milvus ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def milvus_client(milvus_server: MilvusLiteServer) -> Iterator[MilvusClient]:
    client = milvus_server.client()
    try:
        yield client
    finally:
        client.close()


NewCollection = Callable[..., str]


@pytest.fixture
def new_collection(milvus_client: MilvusClient) -> Iterator[NewCollection]:
    """Creates a physical collection the way the operator does; returns its name."""
    created: list[str] = []

    def create(
        *,
        dimension: int = DIMENSION,
        metric: str = "COSINE",
        index: str = "HNSW",
        key_type: str = "INT64",
        varchar_fields: dict[str, int] | None = None,
    ) -> str:
        name = f"worker_{uuid.uuid4().hex[:10]}__v1"
        schema = milvus_client.create_schema(auto_id=False, enable_dynamic_field=False)
        if key_type == "VARCHAR":
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
        else:
            schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        for field, max_length in (varchar_fields or {}).items():
            schema.add_field(field, DataType.VARCHAR, max_length=max_length)
        params = {"M": 16, "efConstruction": 100} if index == "HNSW" else {}
        index_params = milvus_client.prepare_index_params()
        index_params.add_index(field_name="vector", index_type=index, metric_type=metric, params=params)
        milvus_client.create_collection(name, schema=schema, index_params=index_params)
        created.append(name)
        return name

    yield create
    for name in created:
        milvus_client.drop_collection(name)


# -- running the worker ------------------------------------------------------------------------


RunWorker = Callable[..., WorkerRun]


@pytest.fixture
def run_worker(tmp_path: Path) -> RunWorker:
    """Runs `vector-operator worker` in this process as a Job pod would: the assignment in
    $VO_ASSIGNMENT, secrets in the environment, the result read back from the termination file."""
    from vector_operator.worker.command import main

    runs = iter(range(1000))

    def run(assignment: dict[str, Any], **environment: str) -> WorkerRun:
        termination = tmp_path / f"termination-log-{next(runs)}"
        environ = {
            **os.environ,
            **environment,
            "VO_ASSIGNMENT": json.dumps(assignment),
            "TERMINATION_MESSAGE_PATH": str(termination),
        }
        exit_code = main(None, environ)
        message = termination.read_text(encoding="utf-8")
        assert len(message.encode("utf-8")) <= 4096
        return WorkerRun(exit_code, json.loads(message))

    return run
