"""The operator provisions VectorCollections in a real Milvus (Lite server) through the real API
server, repairs what is broken behind its back, and reports what it cannot change in place.

Every assertion reads what a user reads: conditions and Events through kubectl, collections,
aliases and counts through pymilvus.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pymilvus import DataType, MilvusClient
from tests.conftest import OperatorProcess, start_operator
from tests.polling import eventually, unique

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.ports import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]

T = TypeVar("T")


def collection(name: str, alias: str, **spec: Any) -> str:
    manifest = {
        "apiVersion": "vectors.aios.dev/v1alpha1",
        "kind": "VectorCollection",
        "metadata": {"name": name},
        "spec": {
            "collectionName": alias,
            "dimension": 16,
            "metricType": "L2",
            "index": {"type": "IVF_SQ8", "params": {"nlist": 16}},
            "searchParams": {"nprobe": 4},
            "fields": [{"name": "source_table", "type": "VARCHAR", "maxLength": 64}],
            "embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2"},
            **spec,
        },
    }
    return json.dumps(manifest)


def status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(kubectl("get", "vectorcollection", name, "-o", "json").stdout)
    return got.get("status") or {}


def condition(kubectl: Kubectl, name: str, type_: str) -> dict[str, Any]:
    return next((c for c in status(kubectl, name).get("conditions", []) if c["type"] == type_), {})


def events(kubectl: Kubectl, name: str) -> list[tuple[str, str, str]]:
    listed = json.loads(
        kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout
    )
    return [(e["type"], e["reason"], e["message"]) for e in listed["items"]]


def wait_ready(kubectl: Kubectl, name: str) -> None:
    kubectl("wait", "--for=condition=Ready", f"vectorcollection/{name}", "--timeout=90s")


@pytest.fixture
def milvus(milvus_server: MilvusLiteServer) -> Iterator[MilvusClient]:
    client = milvus_server.client()
    try:
        yield client
    finally:
        client.close()


def test_apply_provisions_alias_physical_collection_and_index(
    kubectl: Kubectl, operator: OperatorProcess, milvus: MilvusClient
) -> None:
    alias = unique("nodes")
    kubectl("apply", "-f", "-", input=collection("nodes", alias))
    wait_ready(kubectl, "nodes")

    got = status(kubectl, "nodes")
    physical = f"{alias}__v1"
    assert got["physicalCollection"] == physical
    assert got["phase"] == "Ready"
    assert got["entityCount"] == 0
    assert got["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in got["conditions"]} == {
        "Provisioned": "True",
        "Indexed": "True",
        "UpToDate": "True",
        "Degraded": "False",
        "Ready": "True",
    }
    assert milvus.describe_alias(alias)["collection_name"] == physical
    described = milvus.describe_collection(physical)
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["vector"]["params"]["dim"] == 16
    assert fields["id"]["is_primary"]
    assert fields["source_table"]["type"] == DataType.VARCHAR
    index = milvus.describe_index(physical, milvus.list_indexes(physical)[0])
    assert (index["index_type"], index["metric_type"]) == ("IVF_SQ8", "L2")
    reasons = {reason for _, reason, _ in events(kubectl, "nodes")}
    assert {"CollectionCreated", "AliasCreated", "Ready"} <= reasons

    # The canary probe writes latencies; entity counts follow what is written to Milvus.
    eventually(
        "the canary probe ran", lambda: status(kubectl, "nodes").get("quality", {}).get("searchLatencyP95Ms")
    )
    milvus.insert(physical, [{"id": i, "vector": [float(i)] * 16, "source_table": "t"} for i in range(25)])
    milvus.flush(physical)
    eventually("the entity count follows Milvus", lambda: status(kubectl, "nodes").get("entityCount") == 25)
    metrics = operator.metrics()
    assert 'vector_operator_reconciles_total{kind="VectorCollection",result="ok"}' in metrics
    assert f'vector_operator_collection_entities{{collection="{physical}",name="nodes"' in metrics

    # Reconciling again changes nothing: same physical collection, no new one.
    kubectl("annotate", "vectorcollection", "nodes", "touched=yes")
    time.sleep(3)
    assert [n for n in milvus.list_collections() if n.startswith(alias)] == [physical]


def test_deletion_policy_delete_drops_and_retain_keeps(
    kubectl: Kubectl, operator: OperatorProcess, milvus: MilvusClient
) -> None:
    dropped, kept = unique("dropped"), unique("kept")
    kubectl("apply", "-f", "-", input=collection("dropped", dropped, deletionPolicy="Delete"))
    kubectl("apply", "-f", "-", input=collection("kept", kept, deletionPolicy="Retain"))
    wait_ready(kubectl, "dropped")
    wait_ready(kubectl, "kept")

    kubectl("delete", "vectorcollection", "dropped", "kept", "--timeout=60s")
    names = milvus.list_collections()
    assert not [n for n in names if n.startswith(dropped)]
    assert dropped not in milvus.list_aliases().get("aliases", [])
    assert f"{kept}__v1" in names
    assert milvus.describe_alias(kept)["collection_name"] == f"{kept}__v1"


def test_two_namespaces_claiming_one_collection_name_never_touch_each_others_data(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus_server: MilvusLiteServer,
    milvus: MilvusClient,
    tmp_path: Path,
) -> None:
    other = f"{namespace}-b"
    cluster.kubectl("create", "namespace", other)
    operator = start_operator(
        cluster, namespace, milvus_server.uri, tmp_path / "operator.log", "--namespace", other
    )
    alias = unique("shared")
    theirs = Kubectl(cluster, other)
    try:
        kubectl("apply", "-f", "-", input=collection("first", alias, deletionPolicy="Delete"))
        wait_ready(kubectl, "first")
        rows = [{"id": key, "vector": [float(key)] * 16, "source_table": "first"} for key in range(5)]
        milvus.insert(f"{alias}__v1", rows)

        theirs("apply", "-f", "-", input=collection("second", alias, deletionPolicy="Delete"))
        conflict = eventually(
            "the second claim is refused",
            lambda: (c := condition(theirs, "second", "Ready")).get("reason") == "Conflict" and c,
        )
        assert f"belong to VectorCollection {namespace}/first" in conflict["message"]
        assert "nothing was changed" in conflict["message"]
        assert status(theirs, "second")["phase"] == "Failed"
        assert ("Warning", "Conflict") in [(kind, reason) for kind, reason, _ in events(theirs, "second")]
        assert [n for n in milvus.list_collections() if n.startswith(alias)] == [f"{alias}__v1"]

        theirs("delete", "vectorcollection", "second", "--timeout=60s")  # deletionPolicy Delete
        assert milvus.describe_alias(alias)["collection_name"] == f"{alias}__v1"
        count = milvus.query(
            f"{alias}__v1", filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
        assert count[0]["count(*)"] == 5  # the first namespace's data is all there
        assert condition(kubectl, "first", "Ready")["status"] == "True"
    finally:
        theirs("delete", "vectorcollection", "--all", "--timeout=60s", check=False)
        operator.shut_down(cluster, namespace)
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_what_is_broken_behind_the_operators_back_is_repaired(
    kubectl: Kubectl, operator: OperatorProcess, milvus: MilvusClient
) -> None:
    alias = unique("healing")
    kubectl("apply", "-f", "-", input=collection("healing", alias))
    wait_ready(kubectl, "healing")
    physical = f"{alias}__v1"

    milvus.drop_alias(alias)
    eventually(
        "the alias is back",
        lambda: alias in milvus.list_aliases().get("aliases", []) and milvus.describe_alias(alias),
    )
    assert milvus.describe_alias(alias)["collection_name"] == physical
    eventually(
        "an Event says so", lambda: any(r == "AliasRepaired" for _, r, _ in events(kubectl, "healing"))
    )

    milvus.release_collection(physical)
    milvus.drop_collection(physical)
    eventually("the collection is recreated", lambda: physical in milvus.list_collections())
    degraded = eventually(
        "Degraded says the data was lost",
        lambda: (c := condition(kubectl, "healing", "Degraded")).get("status") == "True" and c,
    )
    assert degraded["reason"] == "PhysicalCollectionLost"
    assert "run a MigrationPlan to refill it" in degraded["message"]
    eventually("it serves again", lambda: condition(kubectl, "healing", "Ready").get("status") == "True")
    time.sleep(5)  # a few periodic checks later, the loss is still reported: nothing refilled it
    assert condition(kubectl, "healing", "Degraded")["reason"] == "PhysicalCollectionLost"
    milvus.insert(physical, [{"id": i, "vector": [float(i)] * 16, "source_table": "t"} for i in range(5)])
    milvus.flush(physical)
    eventually(
        "refilled, it is healthy again",
        lambda: condition(kubectl, "healing", "Degraded").get("status") == "False",
    )


def test_index_change_reindexes_onto_a_copy_and_vector_space_change_requires_a_migration(
    kubectl: Kubectl, operator: OperatorProcess, milvus: MilvusClient
) -> None:
    alias = unique("evolving")
    kubectl("apply", "-f", "-", input=collection("evolving", alias))
    wait_ready(kubectl, "evolving")
    physical = f"{alias}__v1"
    milvus.insert(physical, [{"id": i, "vector": [float(i)] * 16, "source_table": "t"} for i in range(40)])
    milvus.flush(physical)

    hnsw = [
        {
            "op": "replace",
            "path": "/spec/index",
            "value": {"type": "HNSW", "params": {"M": 8, "efConstruction": 64}},
        },
        {"op": "replace", "path": "/spec/searchParams", "value": {"ef": 32}},
    ]
    kubectl("patch", "vectorcollection", "evolving", "--type=json", "-p", json.dumps(hnsw))
    copy = f"{alias}__v2"
    eventually(
        "the alias serves a copy indexed with HNSW",
        lambda: (
            milvus.describe_alias(alias)["collection_name"] == copy
            and milvus.describe_index(copy, milvus.list_indexes(copy)[0])["index_type"] == "HNSW"
        ),
    )
    eventually(
        "Indexed, Ready and UpToDate again for generation 2",
        lambda: all(
            condition(kubectl, "evolving", t).get("status") == "True"
            and condition(kubectl, "evolving", t).get("observedGeneration") == 2
            for t in ("Indexed", "Ready", "UpToDate")
        ),
    )
    reindexed = status(kubectl, "evolving")
    assert reindexed["physicalCollection"] == copy
    assert reindexed["previousPhysicalCollection"] == physical  # kept for reindex.retention
    assert reindexed["entityCount"] == 40  # a re-index loses nothing
    assert reindexed["reindex"]["state"] == "Succeeded"
    assert (reindexed["reindex"]["copied"], reindexed["reindex"]["total"]) == (40, 40)
    assert {"ReindexStarted", "Reindexed"} <= {r for _, r, _ in events(kubectl, "evolving")}
    assert milvus.has_collection(physical)
    assert milvus.describe_index(physical, milvus.list_indexes(physical)[0])["index_type"] == "IVF_SQ8"

    kubectl("patch", "vectorcollection", "evolving", "--type=merge", "-p", '{"spec":{"dimension":32}}')
    up_to_date = eventually(
        "UpToDate=False MigrationRequired",
        lambda: (c := condition(kubectl, "evolving", "UpToDate")).get("reason") == "MigrationRequired" and c,
    )
    assert up_to_date["status"] == "False"
    assert "dimension 16 -> 32" in up_to_date["message"]
    assert "apply a MigrationPlan" in up_to_date["message"]
    # The old collection keeps serving searches through the alias.
    assert condition(kubectl, "evolving", "Ready")["status"] == "True"
    hits = milvus.search(alias, data=[[1.0] * 16], limit=1, search_params={"params": {"ef": 32}})
    assert hits[0][0]["id"] == 1
    assert milvus.describe_collection(copy)["fields"][1]["params"]["dim"] == 16


def test_an_index_type_the_server_only_pretends_to_build_is_refused(
    kubectl: Kubectl, operator: OperatorProcess, milvus: MilvusClient
) -> None:
    """Milvus Lite 3.2 accepts IVF_PQ asynchronously and reports it Finished, but never builds it:
    the operator asks the server itself, refuses the type and names what it can use."""
    alias = unique("pq")
    pq = {"type": "IVF_PQ", "params": {"nlist": 16, "m": 4}}
    kubectl("apply", "-f", "-", input=collection("pq", alias, index=pq))
    indexed = eventually(
        "Indexed=False IndexTypeUnsupported",
        lambda: (c := condition(kubectl, "pq", "Indexed")).get("reason") == "IndexTypeUnsupported" and c,
    )
    assert indexed["status"] == "False"
    assert "does not build index type IVF_PQ" in indexed["message"]
    assert "HNSW" in indexed["message"]
    assert "IVF_SQ8" in indexed["message"]
    assert condition(kubectl, "pq", "Ready")["status"] == "False"
    assert not any(name.startswith(alias) for name in milvus.list_collections())  # nothing half-made
    assert not any(n.startswith("vector_operator_index_probe_") for n in milvus.list_collections())

    hnsw = [
        {
            "op": "replace",
            "path": "/spec/index",
            "value": {"type": "HNSW", "params": {"M": 8, "efConstruction": 64}},
        },
        {"op": "remove", "path": "/spec/searchParams"},
    ]
    kubectl("patch", "vectorcollection", "pq", "--type=json", "-p", json.dumps(hnsw))
    wait_ready(kubectl, "pq")


def test_a_missing_secret_is_reported_then_picked_up(kubectl: Kubectl, operator: OperatorProcess) -> None:
    alias = unique("secured")
    kubectl(
        "apply",
        "-f",
        "-",
        input=collection("secured", alias, milvus={"secretRef": {"name": "milvus-auth", "key": "token"}}),
    )
    ready = eventually(
        "Ready=False SecretUnavailable",
        lambda: (c := condition(kubectl, "secured", "Ready")).get("reason") == "SecretUnavailable" and c,
    )
    assert "Secret" in ready["message"]
    assert "milvus-auth does not exist" in ready["message"]
    kubectl("create", "secret", "generic", "milvus-auth", "--from-literal=token=root:Milvus-s3cret")
    wait_ready(kubectl, "secured")
    # The credential appears nowhere a user or an SRE reads.
    dumped = kubectl("get", "vectorcollection", "secured", "-o", "yaml").stdout
    assert "s3cret" not in dumped
    assert "s3cret" not in json.dumps(events(kubectl, "secured"))
    assert "s3cret" not in operator.log_text()


def test_milvus_outage_is_reported_and_recovered_without_restarting_the_operator(
    cluster: RunningCluster, crds: None, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    server = MilvusLiteServer(tmp_path / "milvus", port=free_port())
    server.start()
    running = start_operator(cluster, namespace, server.uri, tmp_path / "operator.log")
    try:
        alias = unique("outage")
        kubectl("apply", "-f", "-", input=collection("outage", alias, deletionPolicy="Retain"))
        wait_ready(kubectl, "outage")

        server.stop()
        ready = eventually(
            "Ready=False MilvusUnavailable",
            lambda: (c := condition(kubectl, "outage", "Ready")).get("reason") == "MilvusUnavailable" and c,
        )
        assert server.uri.removeprefix("http://") in ready["message"]
        assert any(r == "MilvusUnavailable" for _, r, _ in events(kubectl, "outage"))
        assert running.process.poll() is None  # the operator did not crash

        server.start()
        wait_ready(kubectl, "outage")
        assert status(kubectl, "outage")["phase"] == "Ready"
    finally:
        kubectl("delete", "vectorcollection", "--all", "--timeout=60s", check=False)
        running.stop()
        server.stop()
