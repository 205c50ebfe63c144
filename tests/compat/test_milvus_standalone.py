"""The operator against a real Milvus standalone 2.3 (not Milvus Lite): the core VectorCollection
life cycle, read back the way a user reads it (kubectl conditions and Events, pymilvus)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pymilvus import MilvusClient
from tests.conftest import OperatorProcess, start_operator
from tests.polling import eventually

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.milvus_standalone import MilvusStandaloneServer
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusClients, MilvusEndpoint

pytestmark = [pytest.mark.compat, pytest.mark.cluster]

T = TypeVar("T")
LOOPBACK = "0100007F"


@pytest.fixture
def milvus(milvus_standalone: MilvusStandaloneServer) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=milvus_standalone.uri)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def standalone_operator(
    cluster: RunningCluster,
    crds: None,
    namespace: str,
    milvus_standalone: MilvusStandaloneServer,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    running = start_operator(cluster, namespace, milvus_standalone.uri, tmp_path / "operator.log")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            cluster.kubectl(
                "delete", "vectorcollections", "--all", "-n", namespace, "--timeout=60s", check=False
            )
        running.stop()


def manifest(name: str, alias: str, nlist: int) -> str:
    return json.dumps(
        {
            "apiVersion": "vectors.aios.dev/v1alpha1",
            "kind": "VectorCollection",
            "metadata": {"name": name},
            "spec": {
                "collectionName": alias,
                "dimension": 24,
                "metricType": "IP",
                "index": {"type": "IVF_SQ8", "params": {"nlist": nlist}},
                "searchParams": {"nprobe": 8},
                "fields": [{"name": "source_table", "type": "VARCHAR", "maxLength": 64}],
                "embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2"},
                "deletionPolicy": "Delete",
            },
        }
    )


def status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(kubectl("get", "vectorcollection", name, "-o", "json").stdout)
    return got.get("status") or {}


def conditions(kubectl: Kubectl, name: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status(kubectl, name).get("conditions", [])}


def event_reasons(kubectl: Kubectl, name: str) -> set[str]:
    listed = json.loads(
        kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout
    )
    return {e["reason"] for e in listed["items"]}


def vector_index(milvus: MilvusClient, physical: str) -> dict[str, Any]:
    """The vector index as Milvus describes it; empty while a rebuild has dropped it."""
    names = milvus.list_indexes(physical)
    described: dict[str, Any] | None = milvus.describe_index(physical, names[0]) if names else None
    return described or {}


def test_a_vector_collection_lives_its_life_on_milvus_standalone(
    kubectl: Kubectl, standalone_operator: OperatorProcess, milvus: MilvusClient
) -> None:
    alias = f"compat_{time.time_ns() % 10**9}"
    physical = f"{alias}__v1"

    # apply -> Ready: the alias serves a physical collection as declared.
    kubectl("apply", "-f", "-", input=manifest("catalog", alias, nlist=16))
    kubectl("wait", "--for=condition=Ready", "vectorcollection/catalog", "--timeout=120s")
    got = status(kubectl, "catalog")
    assert got["physicalCollection"] == physical
    assert got["phase"] == "Ready"
    assert {t: c["status"] for t, c in conditions(kubectl, "catalog").items()} == {
        "Provisioned": "True",
        "Indexed": "True",
        "UpToDate": "True",
        "Degraded": "False",
        "Ready": "True",
    }
    assert milvus.describe_alias(alias)["collection_name"] == physical
    fields = {f["name"]: f for f in milvus.describe_collection(physical)["fields"]}
    assert fields["vector"]["params"]["dim"] == 24
    index = vector_index(milvus, physical)
    assert (index["index_type"], index["metric_type"], str(index["nlist"])) == ("IVF_SQ8", "IP", "16")

    # Data written through the alias is counted exactly, and searched with the serving params.
    rows = [{"id": i, "vector": [1.0 + (i % 5)] + [0.5] * 23, "source_table": "t"} for i in range(300)]
    milvus.insert(alias, rows)
    milvus.flush(physical)
    eventually(
        "the entity count follows Milvus", lambda: status(kubectl, "catalog").get("entityCount") == 300
    )
    eventually(
        "the canary probe ran",
        lambda: status(kubectl, "catalog").get("quality", {}).get("searchLatencyP95Ms"),
    )

    # Changing nlist re-indexes onto a copy (the serving collection is never released); nothing is lost.
    kubectl(
        "patch",
        "vectorcollection",
        "catalog",
        "--type=merge",
        "-p",
        '{"spec":{"index":{"type":"IVF_SQ8","params":{"nlist":32}}}}',
    )
    copy = f"{alias}__v2"
    eventually(
        "the alias serves a copy indexed with nlist 32",
        lambda: (
            milvus.describe_alias(alias)["collection_name"] == copy
            and str(vector_index(milvus, copy).get("nlist")) == "32"
        ),
        timeout=180,
    )
    eventually(
        "Indexed, Ready and UpToDate again for generation 2",
        lambda: all(
            (c := conditions(kubectl, "catalog").get(t, {})).get("status") == "True"
            and c.get("observedGeneration") == 2
            for t in ("Indexed", "Ready", "UpToDate")
        ),
    )
    assert {"ReindexStarted", "Reindexed"} <= set(event_reasons(kubectl, "catalog"))
    assert status(kubectl, "catalog")["entityCount"] == 300
    assert status(kubectl, "catalog")["reindex"]["copied"] == 300
    assert str(vector_index(milvus, physical).get("nlist")) == "16"  # the old one, kept for the retention
    hits = milvus.search(alias, data=[[5.0] + [0.5] * 23], limit=3, search_params={"params": {"nprobe": 8}})
    assert len(hits[0]) == 3

    # deletionPolicy Delete: the alias and its collection are gone from Milvus.
    kubectl("delete", "vectorcollection", "catalog", "--timeout=60s")
    assert alias not in milvus.list_aliases().get("aliases", [])
    assert not [n for n in milvus.list_collections() if n.startswith(alias)]


def test_the_index_types_milvus_standalone_really_builds(milvus_standalone: MilvusStandaloneServer) -> None:
    """The operator's probe against Milvus standalone 2.3: it builds every type the API offers
    (DISKANN too), and honours nlist."""
    clients = MilvusClients()
    try:
        support = MilvusCollections(
            clients, MilvusEndpoint(milvus_standalone.uri), lambda *_: None
        ).index_support()
    finally:
        clients.close()
    assert support.server.startswith("v2.3")
    assert support.built == {"FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "DISKANN", "AUTOINDEX"}
    assert support.ignored == {}


def _listening(net_dir: Path, inodes: set[str]) -> set[tuple[str, int]]:
    """(address as /proc/net/tcp writes it, port) of the LISTEN sockets among `inodes`."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in (net_dir / table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                address, port = fields[1].split(":")
                found.add((address, int(port, 16)))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def test_milvus_standalone_is_reachable_on_loopback_only(milvus_standalone: MilvusStandaloneServer) -> None:
    forwarder = milvus_standalone.pid
    assert forwarder is not None
    [server] = _children(forwarder)
    processes = {forwarder, server}
    on_host = _listening(Path("/proc/self/net"), set().union(*(_socket_inodes(p) for p in processes)))
    # On the host: the client and health ports, on 127.0.0.1, and nothing else.
    assert on_host == {(LOOPBACK, milvus_standalone.port), (LOOPBACK, milvus_standalone.health_port)}
    # Inside its private network namespace Milvus binds every interface (it cannot be told
    # otherwise): that is why it runs there.
    inside = _listening(Path(f"/proc/{server}/net"), _socket_inodes(server))
    assert (("0" * 32, 19530)) in inside
