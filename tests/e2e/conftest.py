"""Fixtures of the end-to-end tests (helpers in migration_support.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from tests.conftest import OperatorProcess
from tests.e2e.migration_support import QUICKSTART, run_operator

from localcluster.cluster import RunningCluster
from localcluster.milvus_lite import MilvusLiteServer


@pytest.fixture
def source_db(tmp_path: Path) -> Path:
    """The quickstart's 200 articles in a SQLite file the worker processes read."""
    path = tmp_path / "articles.db"
    with sqlite3.connect(path) as connection:
        connection.executescript((QUICKSTART / "articles.sql").read_text())
    return path


@pytest.fixture
def milvus(milvus_server: MilvusLiteServer) -> Iterator[MilvusClient]:
    client = milvus_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def migration_operator(
    cluster: RunningCluster, crds: None, namespace: str, milvus_server: MilvusLiteServer, tmp_path: Path
) -> Iterator[OperatorProcess]:
    running = run_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator.log")
    try:
        yield running
    finally:
        running.shut_down(cluster, namespace)
