"""Shared fixtures: the real local Kubernetes control plane and a real Milvus Lite server.

Fixtures (all real processes, no mocks):

- ``cluster`` (session): a :class:`localcluster.cluster.RunningCluster`; brings the local control
  plane up for the test session, or reuses one that ``make cluster-up`` already started (then it is
  left running afterwards).
- ``namespace`` (function): a fresh namespace for one test, deleted afterwards.
- ``kubectl`` (function): runs the built kubectl against the cluster, in the test's namespace.
- ``milvus_server`` (session): a Milvus Lite server on 127.0.0.1 with its data in a temp dir.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.cluster import Kubectl, LocalCluster, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer

REPO_ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def cluster() -> Iterator[RunningCluster]:
    local = LocalCluster(state_dir=Path(os.environ.get("VO_DEVENV_DIR", REPO_ROOT / ".devenv")))
    already_running = local.status() is not None
    running = local.up()
    try:
        yield running
    finally:
        if not already_running and not os.environ.get("VO_KEEP_CLUSTER"):
            local.down()


@pytest.fixture
def namespace(cluster: RunningCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = request.node.name.lower().replace("_", "-")
    keep = "".join(ch for ch in base if ch.isalnum() or ch == "-")[:40].strip("-")
    name = f"t-{keep}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def kubectl(cluster: RunningCluster, namespace: str) -> Kubectl:
    return Kubectl(cluster, namespace)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusLiteServer]:
    server = MilvusLiteServer(data_dir=tmp_path_factory.mktemp("milvus-lite"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
