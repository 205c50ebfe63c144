"""Deleting a namespace never leaves it stuck in Terminating on the operator's finalizer, whatever
order the namespace controller deletes the VectorCollections and their Secret in; deletionPolicy
Delete still drops the collections in Milvus whenever the operator can reach them, and says so
(an Event that may not outlive the namespace, and the operator's log) when it cannot."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from tests.conftest import OperatorProcess, start_operator
from tests.polling import unique

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]

# Kopf retries the finalizer's Milvus/Secret failures 6 times, 10 s apart, before it gives up:
# the namespace must be gone well within twice that.
NAMESPACE_GONE_WITHIN_S = 120


def collection(name: str, alias: str, deletion_policy: str, secret: str | None = "milvus-auth") -> str:
    spec = {
        "collectionName": alias,
        "dimension": 8,
        "metricType": "COSINE",
        "index": {"type": "HNSW", "params": {"M": 8, "efConstruction": 32}},
        "embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2"},
        "deletionPolicy": deletion_policy,
    }
    if secret:
        spec["milvus"] = {"secretRef": {"name": secret, "key": "token"}}
    return json.dumps(
        {
            "apiVersion": "vectors.aios.dev/v1alpha1",
            "kind": "VectorCollection",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


@pytest.fixture
def milvus(milvus_server: MilvusLiteServer) -> Iterator[MilvusClient]:
    client = milvus_server.client()
    try:
        yield client
    finally:
        client.close()


def ours(milvus: MilvusClient, alias: str) -> list[str]:
    """The alias (if it exists) and its physical collections, as Milvus lists them."""
    aliases = [a for a in milvus.list_aliases().get("aliases", []) if a == alias]
    return aliases + sorted(n for n in milvus.list_collections() if n.startswith(f"{alias}__v"))


def apply_ready(kubectl: Kubectl, *manifests: str) -> None:
    for manifest in manifests:
        kubectl("apply", "-f", "-", input=manifest)
    kubectl("wait", "--for=condition=Ready", "vectorcollection", "--all", "--timeout=90s")


def delete_namespace_and_wait(cluster: RunningCluster, namespace: str) -> float:
    """Deletes the namespace; returns how long it took to disappear (fails past the bound)."""
    started = time.monotonic()
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    while time.monotonic() - started < NAMESPACE_GONE_WITHIN_S:
        found = cluster.kubectl("get", "namespace", namespace, "-o", "json", check=False)
        if found.returncode != 0 and "NotFound" in found.stderr:
            return time.monotonic() - started
        time.sleep(1)
    left = cluster.kubectl("get", "vectorcollections", "-n", namespace, "-o", "json", check=False).stdout
    raise AssertionError(
        f"namespace {namespace} still exists after {NAMESPACE_GONE_WITHIN_S}s: {left[-2000:]}"
    )


def test_deleting_the_namespace_drops_delete_collections_keeps_retain_ones_and_finishes(
    cluster: RunningCluster, kubectl: Kubectl, namespace: str, operator: OperatorProcess, milvus: MilvusClient
) -> None:
    dropped, kept = unique("ns_dropped"), unique("ns_kept")
    kubectl("create", "secret", "generic", "milvus-auth", "--from-literal=token=root:Milvus")
    apply_ready(
        kubectl,
        collection("dropped", dropped, "Delete"),
        collection("kept", kept, "Retain"),
    )
    assert ours(milvus, dropped) == [dropped, f"{dropped}__v1"]

    delete_namespace_and_wait(cluster, namespace)

    assert operator.process.poll() is None
    # The namespace controller deletes the Secret and the VectorCollections in no set order:
    # either way the operator still reaches Milvus with the credentials it last used.
    assert ours(milvus, dropped) == []
    assert ours(milvus, kept) == [kept, f"{kept}__v1"]
    log = operator.log_text()
    assert "DeletionIncomplete" not in log
    assert "root:Milvus" not in log


def test_a_secret_deleted_first_does_not_keep_the_namespace(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus_server: MilvusLiteServer,
    milvus: MilvusClient,
    tmp_path: Path,
) -> None:
    """The worst case: the Secret went first and the operator restarted since, so it never held
    the credentials. It cannot drop the collections; it releases the object with a warning."""
    alias = unique("ns_orphaned")
    log = tmp_path / "operator.log"
    running = start_operator(cluster, namespace, milvus_server.uri, log)
    try:
        kubectl("create", "secret", "generic", "milvus-auth", "--from-literal=token=root:Milvus")
        apply_ready(kubectl, collection("orphaned", alias, "Delete"))
        running.stop()
        kubectl("delete", "secret", "milvus-auth")
        running = start_operator(cluster, namespace, milvus_server.uri, log)
        delete_namespace_and_wait(cluster, namespace)
        assert running.process.poll() is None
        # Nothing could be dropped, and the operator says so and why.
        assert ours(milvus, alias) == [alias, f"{alias}__v1"]
        text = running.log_text()
        assert f"gave up dropping {alias}" in text
        assert f"Secret {namespace}/milvus-auth does not exist" in text
    finally:
        running.stop()
        for name in ours(milvus, alias):
            if name == alias:
                milvus.drop_alias(alias)
            else:
                milvus.drop_collection(name)
