"""The operator as a platform team installs it: `helm install` of charts/vector-operator into the
local cluster, the operator running as the chart's pod from the image `make image` built (the
node agent runs it from the image's filesystem, under the chart's ServiceAccount, with in-cluster
configuration and no kubeconfig), and the in-cluster quickstart (examples/quickstart-in-cluster,
as kustomize builds it) migrated through worker Jobs that run from the same image.

Two installs: one replica as shipped (the quickstart's one auto-sized Job), and two replicas with
Kopf peering, where the active replica is killed mid-migration and the other finishes it exactly.
The in-cluster quickstart's PostgreSQL Deployment is replaced by the session's real PostgreSQL
loaded with the same articles.sql (no registry image can be pulled here); everything else is
applied as shipped."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
import yaml
from pymilvus import MilvusClient
from tests.conftest import REPO_ROOT, PostgresServer
from tests.e2e.migration_support import ROWS, apply, count, eventually, ids_in, phase_is, plan_status

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.ports import free_port
from vector_operator import DEFAULT_WORKER_IMAGE
from vector_operator.migration.batch_jobs import MANAGED_BY, MANAGED_BY_LABEL

pytestmark = pytest.mark.cluster

CHART = REPO_ROOT / "charts" / "vector-operator"
IN_CLUSTER_QUICKSTART = REPO_ROOT / "examples" / "quickstart-in-cluster"
ARTICLES = REPO_ROOT / "examples" / "quickstart" / "articles.sql"
OPERATOR_POD = "app.kubernetes.io/component=operator"


@pytest.fixture(scope="module")
def image() -> str:
    """The image `make image` built into buildah's local storage (make test builds it first)."""
    buildah = shutil.which("buildah")
    assert buildah is not None, "buildah is not installed: run make system-packages"
    found = subprocess.run(
        [buildah, "inspect", "--type", "image", DEFAULT_WORKER_IMAGE], capture_output=True, text=True
    )
    assert found.returncode == 0, f"{DEFAULT_WORKER_IMAGE} is not in local storage: run make image"
    return DEFAULT_WORKER_IMAGE


@pytest.fixture
def source_url(postgres: PostgresServer) -> Iterator[str]:
    """A database of the session's PostgreSQL holding the quickstart's articles."""
    database = f"quickstart_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {database}")
    url = postgres.url.rsplit("/", 1)[0] + f"/{database}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(ARTICLES.read_text())
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def alias(kubectl: Kubectl) -> str:
    """A unique alias in the shared Milvus, for a namespace that enforces the "restricted" Pod
    Security Standard (the chart's pods and the worker Jobs must meet it)."""
    kubectl("label", "namespace", kubectl.namespace or "", "pod-security.kubernetes.io/enforce=restricted")
    return f"articles_{uuid.uuid4().hex[:8]}"


def helm(cluster: RunningCluster, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(cluster.bin_dir / "helm"), "--kubeconfig", str(cluster.kubeconfig), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"helm {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


class Release:
    """One `helm install` of the chart into the test's namespace, uninstalled afterwards."""

    def __init__(self, cluster: RunningCluster, kubectl: Kubectl, values: dict[str, Any]) -> None:
        self.cluster, self.kubectl = cluster, kubectl
        self.name = f"vo-{uuid.uuid4().hex[:6]}"
        self.values = values

    def __enter__(self) -> Release:
        values_file = self.cluster.state_dir / f"{self.name}-values.yaml"
        values_file.write_text(yaml.safe_dump(self.values))
        namespace = self.kubectl.namespace or ""
        helm(self.cluster, "install", self.name, str(CHART), "--namespace", namespace, "-f", str(values_file))
        values_file.unlink()
        return self

    def __exit__(self, *_: object) -> None:
        # The plan and the collection go first, while the operator still runs to finalize them.
        self.kubectl("delete", "mplan,vcol,rbp", "--all", "--timeout=120s", check=False)
        helm(self.cluster, "uninstall", self.name, "--namespace", self.kubectl.namespace or "", "--wait")

    def operator_pods(self) -> list[dict[str, Any]]:
        selector = f"{OPERATOR_POD},app.kubernetes.io/instance={self.name}"
        listed = json.loads(self.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)
        return [pod for pod in listed["items"] if not pod["metadata"].get("deletionTimestamp")]

    def running_operators(self, replicas: int) -> list[dict[str, Any]]:
        def running() -> list[dict[str, Any]] | None:
            pods = [p for p in self.operator_pods() if p.get("status", {}).get("phase") == "Running"]
            return pods if len(pods) == replicas else None

        return eventually(f"{replicas} operator pod(s) run", running, timeout=180)

    def log(self, pod: dict[str, Any]) -> str:
        meta = pod["metadata"]
        path = (
            self.cluster.node_dir
            / "pods"
            / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
            / "container.log"
        )
        return path.read_text(errors="replace") if path.exists() else ""


def values(namespace: str, milvus_uri: str, **extra: Any) -> dict[str, Any]:
    """The chart's values for a test install: watch only the test's namespace, the session's Milvus
    (no embedded Milvus Lite: it needs a PersistentVolume), /metrics on 127.0.0.1 and free ports."""
    chosen: dict[str, Any] = {
        "watchNamespaces": [namespace],
        "milvus": {"uri": milvus_uri, "lite": {"enabled": False}},
        "metrics": {"address": "127.0.0.1", "port": free_port()},
        "livenessProbe": {"port": free_port()},
        "operator": {"planInterval": 2},
    }
    for key, value in extra.items():
        chosen[key] = {**chosen[key], **value} if isinstance(value, dict) and key in chosen else value
    return chosen


def in_cluster_quickstart(
    kubectl: Kubectl, source_url: str, alias: str, **plan_spec: Any
) -> list[dict[str, Any]]:
    """examples/quickstart-in-cluster as kustomize builds it, its Secret pointed at ``source_url``
    in place of the PostgreSQL Deployment it ships, and the alias made unique for the shared Milvus."""
    built = kubectl("kustomize", str(IN_CLUSTER_QUICKSTART), namespace="").stdout
    documents = []
    for document in (d for d in yaml.safe_load_all(built) if d):
        name = document["metadata"]["name"]
        # Its PostgreSQL (Secret, Deployment, Service): the session's PostgreSQL stands in.
        if name == "quickstart-postgres":
            continue
        if document["kind"] == "Secret" and name == "quickstart-db":
            document["stringData"]["url"] = source_url
        elif document["kind"] == "VectorCollection":
            document["spec"]["collectionName"] = alias
        elif document["kind"] == "MigrationPlan":
            document["spec"].update(plan_spec)
        documents.append(document)
    return documents


def assert_exactly_migrated(kubectl: Kubectl, milvus: MilvusClient, alias: str) -> dict[str, Any]:
    status = plan_status(kubectl)
    progress = status["progress"]
    assert progress["recordsRead"] == ROWS
    assert progress["recordsDone"] + progress["recordsSkipped"] == progress["recordsRead"]
    ids = ids_in(milvus, alias)
    assert len(ids) == len(set(ids)) == progress["recordsDone"] == count(milvus, alias)
    return status


def assert_no_forbidden(logs: dict[str, str]) -> None:
    """Each operator's log (by pod) is there and shows no request the chart's RBAC refused."""
    for pod, log in logs.items():
        assert log, f"no log for {pod}"
        assert " 403" not in log, log[-3000:]
        assert "Forbidden" not in log, log[-3000:]


def test_the_chart_runs_the_in_cluster_quickstart_from_the_image(
    cluster: RunningCluster,
    kubectl: Kubectl,
    crds: None,
    image: str,
    milvus_server: MilvusLiteServer,
    milvus: MilvusClient,
    source_url: str,
    alias: str,
) -> None:
    with Release(cluster, kubectl, values(kubectl.namespace or "", milvus_server.uri)) as release:
        (pod,) = release.running_operators(1)
        status = pod["status"]["containerStatuses"][0]
        assert status["image"] == image
        assert status["imageID"], "the node agent ran the operator from the image's filesystem"
        assert pod["spec"]["serviceAccountName"] != "default"

        apply(kubectl, in_cluster_quickstart(kubectl, source_url, alias))
        worker = eventually("the worker Job's pod runs", lambda: worker_pod_started(kubectl), timeout=420)
        assert worker["image"] == image
        assert worker["imageID"].startswith("sha256:"), "the node agent ran the worker from the image"
        eventually("the plan succeeds", phase_is(kubectl, "Succeeded"), timeout=420)
        status = assert_exactly_migrated(kubectl, milvus, alias)
        assert status["progress"]["batchesTotal"] == 1  # the shipped quickstart: auto sizing
        assert status["quality"]["coherence"]["mean"] >= 0.99
        assert milvus.describe_alias(alias)["collection_name"] == status["newPhysicalCollection"]
        assert_no_forbidden({p["metadata"]["name"]: release.log(p) for p in release.operator_pods()})


def test_two_replicas_elect_one_and_the_other_finishes_the_migration_when_it_is_killed(
    cluster: RunningCluster,
    kubectl: Kubectl,
    crds: None,
    image: str,
    milvus_server: MilvusLiteServer,
    milvus: MilvusClient,
    source_url: str,
    alias: str,
) -> None:
    # Pods of the local node share the host's network: two replicas cannot both listen on one
    # port, so these serve no /metrics and no liveness endpoint (a real cluster gives each its own).
    ha = values(
        kubectl.namespace or "",
        milvus_server.uri,
        replicaCount=2,
        peering={"enabled": True, "name": f"peering-{uuid.uuid4().hex[:6]}"},
        metrics={"enabled": False},
        livenessProbe={"enabled": False},
    )
    with Release(cluster, kubectl, ha) as release:
        release.running_operators(2)
        peering_name = ha["peering"]["name"]
        four_jobs = {"batching": {"recordsPerJob": 50, "maxConcurrentJobs": 1}}
        apply(kubectl, in_cluster_quickstart(kubectl, source_url, alias, **four_jobs))

        def first_batch_done() -> dict[str, Any] | None:
            status = plan_status(kubectl)
            if status.get("phase") in ("Failed", "RolledBack"):
                raise AssertionError(json.dumps(status)[:3000])
            done = (status.get("progress") or {}).get("batchesSucceeded") or 0
            return status if status.get("phase") == "Generating" and done >= 1 else None

        eventually("the first of four batches succeeds", first_batch_done, timeout=420)
        active = active_replica(kubectl, peering_name)
        killed = next(p for p in release.operator_pods() if p["metadata"]["name"] == active)
        (standby,) = [p for p in release.operator_pods() if p["metadata"]["name"] != active]
        # Exactly one replica works: the standby is paused (Kopf starts it paused; it resumes only
        # while it sees no peer above it), the elected one is not.
        killed_log = release.log(killed)  # the node agent removes it with the pod
        assert standing_by(release.log(standby)), release.log(standby)[-3000:]
        assert not standing_by(killed_log), killed_log[-3000:]
        kubectl("delete", "pod", active, "--grace-period=0", "--force", "--wait=false")

        eventually("the plan succeeds", phase_is(kubectl, "Succeeded"), timeout=480)
        assert_exactly_migrated(kubectl, milvus, alias)
        survivors = release.operator_pods()
        assert active not in {p["metadata"]["name"] for p in survivors}
        # The standby or the Deployment's replacement (whichever drew the higher priority) took over
        # once the killed peer was gone; the other stands by.
        logs = {p["metadata"]["name"]: release.log(p) for p in survivors}
        assert [standing_by(log) for log in logs.values()].count(False) == 1, logs
        assert_no_forbidden({active: killed_log, **logs})


def worker_pod_started(kubectl: Kubectl) -> dict[str, Any] | None:
    """The container status of a worker Job's pod once its container started (running or done)."""
    listed = json.loads(kubectl("get", "pods", "-l", f"{MANAGED_BY_LABEL}={MANAGED_BY}", "-o", "json").stdout)
    for pod in listed["items"]:
        for status in pod.get("status", {}).get("containerStatuses", []):
            if "running" in status.get("state", {}) or "terminated" in status.get("state", {}):
                return dict(status)
    return None


def standing_by(log: str) -> bool:
    """Whether an operator's Kopf peering has it paused: it starts paused and says so only when that
    changes ("Resuming operations ..." when it finds no peer above it, "Pausing operations in favour
    of ..." when one appears), so a standby that never resumed says nothing."""
    return log.rfind("Pausing operations") >= log.rfind("Resuming operations")


def active_replica(kubectl: Kubectl, peering: str) -> str:
    """The replica Kopf's peering elected: the live peer of the highest priority (peers record
    themselves under their POD_ID, the pod's name)."""

    def elected() -> str | None:
        got = kubectl("get", "kopfpeering", peering, "-o", "json", check=False)
        if got.returncode != 0:
            return None
        peers: dict[str, dict[str, Any]] = json.loads(got.stdout).get("status") or {}
        if len(peers) < 2:
            return None
        return max(peers.items(), key=lambda item: int(item[1].get("priority", 0)))[0]

    return eventually("both replicas are peers", elected, timeout=120)
