"""The chart as an installer sees it, with the real helm and the real API server: it lints; every
notable option renders objects the API server accepts (server-side dry run) with the operator's
flags, the "restricted" security contexts and Milvus Lite as asked; values.schema.json refuses
wrong types and unknown keys; and the RBAC it installs gives the operator exactly what it uses and
the worker ServiceAccount nothing, as the API server's own authorizer answers (`kubectl auth
can-i`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.cluster import Kubectl, RunningCluster

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "vector-operator"
RELEASE = "vo"
FULLNAME = "vo-vector-operator"
WORKER_SA = f"{FULLNAME}-worker"
# Kinds whose CRD the local cluster does not have: their shape is checked, not the API server's word.
NOT_INSTALLED_KINDS = {"ServiceMonitor", "KopfPeering", "ClusterKopfPeering"}
PLANS, COLLECTIONS, POLICIES = (
    f"{plural}.vectors.aios.dev" for plural in ("migrationplans", "vectorcollections", "rollbackpolicies")
)
ROLES, ROLEBINDINGS, CLUSTERROLES, CLUSTERROLEBINDINGS = (
    f"{plural}.rbac.authorization.k8s.io"
    for plural in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
)
CRDS = "customresourcedefinitions.apiextensions.k8s.io"
PEERING_CRDS = ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")

Json = dict[str, Any]


def helm(cluster: RunningCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [str(cluster.bin_dir / "helm"), "--kubeconfig", str(cluster.kubeconfig), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(cluster: RunningCluster, namespace: str, *values: str) -> list[Json]:
    args = ["template", RELEASE, str(CHART), "--namespace", namespace]
    for value in values:
        args += ["--set", value]
    return [document for document in yaml.safe_load_all(helm(cluster, *args).stdout) if document]


def only(documents: list[Json], kind: str) -> Json:
    found = [document for document in documents if document["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def operator_command(documents: list[Json]) -> list[str]:
    container = only(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    command: list[str] = container["command"]
    return command


def assert_restricted(pod_spec: Json) -> None:
    """The "restricted" Pod Security Standard, and a read-only root filesystem with /tmp writable."""
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod_spec["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(volume["name"] == "tmp" and "emptyDir" in volume for volume in pod_spec["volumes"])


def dry_run(kubectl: Kubectl, documents: list[Json]) -> None:
    """The API server's word on every object (a server-side dry run: validated, admitted, not stored)."""
    by_namespace: dict[str | None, list[Json]] = {}
    for document in documents:
        if document["kind"] not in NOT_INSTALLED_KINDS:
            by_namespace.setdefault(document["metadata"].get("namespace"), []).append(document)
    for namespace, accepted in by_namespace.items():
        listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": accepted})
        applied = kubectl(
            "apply", "--dry-run=server", "-f", "-", input=listed, namespace=namespace, check=False
        )
        assert applied.returncode == 0, applied.stderr


@pytest.fixture
def second_namespace(cluster: RunningCluster, namespace: str) -> Iterator[str]:
    name = f"{namespace[:50]}-b"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def test_every_option_renders_objects_the_api_server_accepts(
    cluster: RunningCluster, kubectl: Kubectl, namespace: str, second_namespace: str
) -> None:
    linted = helm(cluster, "lint", str(CHART), "--strict", check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr

    # Default values: cluster mode, Milvus Lite, metrics on 0.0.0.0, one replica, no peering.
    documents = render(cluster, namespace)
    kinds = sorted(document["kind"] for document in documents)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "Service",
            *["StatefulSet"],
        ]
    )
    deployment = only(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert_restricted(pod)
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/vectors-aios/vector-operator:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    milvus_uri = f"http://{FULLNAME}-milvus-lite.{namespace}.svc:19530"
    assert container["command"] == [
        "vector-operator", "run", "--all-namespaces",
        f"--milvus-uri={milvus_uri}",
        "--metrics-port=8080", "--metrics-address=0.0.0.0", "--liveness-port=8081",
        "--worker-image=ghcr.io/vectors-aios/vector-operator:0.1.0",
        "--plan-interval=5", "--log-format=json",
    ]  # fmt: skip
    statefulset = only(documents, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 1
    lite_pod = statefulset["spec"]["template"]["spec"]
    assert_restricted(lite_pod)
    assert lite_pod["automountServiceAccountToken"] is False
    assert lite_pod["containers"][0]["command"] == [
        "milvus-lite", "server", "--data-dir=/var/lib/milvus-lite", "--host=0.0.0.0", "--port=19530",
    ]  # fmt: skip
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    services = {
        document["metadata"]["name"]: document for document in documents if document["kind"] == "Service"
    }
    assert services[f"{FULLNAME}-milvus-lite"]["spec"]["ports"][0]["port"] == 19530
    assert services[f"{FULLNAME}-metrics"]["spec"]["ports"][0]["targetPort"] == "metrics"
    dry_run(kubectl, documents)

    # Namespaced mode over two namespaces, Kopf peering, the worker ServiceAccount in each, allow-lists.
    documents = render(
        cluster,
        namespace,
        f"watchNamespaces={{{namespace},{second_namespace}}}",
        "peering.enabled=true",
        "replicaCount=2",
        "worker.allowedImages={registry.example/embedder:2}",
        "worker.allowedServiceAccounts={gpu-worker}",
        "metrics.address=127.0.0.1",
    )
    command = operator_command(documents)
    assert command[2:4] == [f"--namespace={namespace}", f"--namespace={second_namespace}"]
    assert "--all-namespaces" not in command
    assert "--metrics-address=127.0.0.1" in command
    assert "--allowed-worker-image=registry.example/embedder:2" in command
    assert f"--worker-service-account={WORKER_SA}" in command
    allowed = [flag for flag in command if flag.startswith("--allowed-worker-service-account=")]
    assert allowed == [
        f"--allowed-worker-service-account={WORKER_SA}",
        "--allowed-worker-service-account=gpu-worker",
    ]
    assert "--peering=vector-operator" in command
    # Two replicas with peering: one active, one standing by; a rolling update is safe.
    assert only(documents, "Deployment")["spec"]["replicas"] == 2
    assert only(documents, "Deployment")["spec"]["strategy"] == {"type": "RollingUpdate"}
    roles = {document["metadata"]["namespace"] for document in documents if document["kind"] == "Role"}
    assert roles == {namespace, second_namespace}
    workers = [d for d in documents if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == WORKER_SA]
    assert {worker["metadata"]["namespace"] for worker in workers} == {namespace, second_namespace}
    assert all(worker["automountServiceAccountToken"] is False for worker in workers)
    peerings = [document for document in documents if document["kind"] == "KopfPeering"]
    assert {peering["metadata"]["namespace"] for peering in peerings} == {namespace, second_namespace}
    # Kopf's peering CRDs are in crds/ (helm installs them first, shared by releases), not templates.
    assert not [document for document in documents if document["kind"] == "CustomResourceDefinition"]
    peering_crds = yaml.safe_load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text())
    assert sorted(crd["metadata"]["name"] for crd in peering_crds) == sorted(PEERING_CRDS)
    # Only the cluster-scoped reads it cannot avoid are cluster-wide: no Secret, no write.
    cluster_rules = only(documents, "ClusterRole")["rules"]
    assert {resource for rule in cluster_rules for resource in rule["resources"]} == {
        "nodes", "customresourcedefinitions", "namespaces",
    }  # fmt: skip
    assert {verb for rule in cluster_rules for verb in rule["verbs"]} <= {"list", "watch"}
    dry_run(kubectl, documents)

    # Cluster mode with peering: a ClusterKopfPeering; the worker ServiceAccount where asked.
    documents = render(
        cluster, namespace, "peering.enabled=true",
        f"worker.serviceAccount.namespaces={{{second_namespace}}}",
    )  # fmt: skip
    command = operator_command(documents)
    assert "--all-namespaces" in command
    assert "--peering=vector-operator" in command
    assert f"--worker-service-account={WORKER_SA}" in command
    assert only(documents, "ClusterKopfPeering")["metadata"]["name"] == "vector-operator"
    assert not [document for document in documents if document["kind"] == "CustomResourceDefinition"]
    peering_rules = [r for r in only(documents, "ClusterRole")["rules"] if r["apiGroups"] == ["kopf.dev"]]
    assert peering_rules == [
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "verbs": ["get", "list", "watch", "patch"],
        }
    ]
    dry_run(kubectl, documents)

    # An external Milvus, no Milvus Lite, no metrics (--metrics-port 0), no worker ServiceAccount.
    documents = render(
        cluster, namespace, "milvus.lite.enabled=false", "milvus.uri=http://milvus.milvus.svc:19530",
        "metrics.enabled=false", "worker.serviceAccount.create=false", "image.tag=1.2.3",
    )  # fmt: skip
    command = operator_command(documents)
    assert "--milvus-uri=http://milvus.milvus.svc:19530" in command
    assert "--metrics-port=0" in command
    assert "--worker-image=ghcr.io/vectors-aios/vector-operator:1.2.3" in command
    assert not any(flag.startswith("--worker-service-account") for flag in command)
    assert {document["kind"] for document in documents} == {
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment",
    }  # fmt: skip
    dry_run(kubectl, documents)

    # prometheus-operator: a ServiceMonitor that keeps the operator's labels and names the job.
    documents = render(
        cluster, namespace,
        "monitoring.serviceMonitor.enabled=true", "monitoring.serviceMonitor.labels.release=kps",
        "monitoring.prometheusRule.enabled=true", "monitoring.dashboard.enabled=true",
    )  # fmt: skip
    monitor = only(documents, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "metrics",
            "path": "/metrics",
            "honorLabels": True,
            "interval": "30s",
            "scrapeTimeout": "10s",
        }
    ]
    service = next(
        d for d in documents if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")
    )
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert (
        service["metadata"]["labels"]["app.kubernetes.io/name"] == "vector-operator"
    )  # job="vector-operator"
    dry_run(kubectl, [document for document in documents if document["kind"] != "PrometheusRule"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("metrics.port=http", "/metrics/port"),
        ("metrics.prot=8080", "'prot'"),
        ("milvus.lite.persistance.size=1Gi", "'persistance'"),
        ("replicas=2", "'replicas'"),
        ("replicaCount=2", "/replicaCount"),  # without peering
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("watchNamespaces={Not_A_Namespace}", "/watchNamespaces/0"),
    ],
)
def test_the_values_schema_refuses_wrong_types_and_unknown_keys(
    cluster: RunningCluster, value: str, message: str
) -> None:
    refused = helm(cluster, "template", RELEASE, str(CHART), "--set", value, check=False)
    assert refused.returncode != 0
    assert "values don't meet the specifications of the schema" in refused.stderr
    assert message in refused.stderr, refused.stderr


def can_i(
    kubectl: Kubectl, subject: str, verb: str, resource: str, namespace: str | None, *extra: str
) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={subject}", *extra]
    args += ["--namespace", namespace] if namespace else ["--all-namespaces"]
    answer = kubectl.running.kubectl(*args, check=False)
    assert answer.stdout.strip() in ("yes", "no"), answer.stdout + answer.stderr
    return answer.stdout.strip() == "yes"


def rules_of(kubectl: Kubectl, subject: str, namespace: str) -> list[str]:
    listed = kubectl.running.kubectl("auth", "can-i", "--list", f"--as={subject}", "--namespace", namespace)
    return sorted(
        line.split(None, 1)[0] + " " + line.rsplit(None, 1)[1] for line in listed.stdout.splitlines()[1:]
    )


@pytest.fixture
def peering_crds(cluster: RunningCluster) -> Iterator[None]:
    """Kopf's peering CRDs, as the chart's crds/ holds them; removed afterwards unless they were there."""
    present = cluster.kubectl("get", "crd", *PEERING_CRDS, "--ignore-not-found", "-o", "name").stdout.split()
    cluster.kubectl("apply", "-f", str(CHART / "crds" / "kopf.dev_peerings.yaml"))
    for crd in PEERING_CRDS:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    try:
        yield
    finally:
        for crd in PEERING_CRDS:
            if f"customresourcedefinition.apiextensions.k8s.io/{crd}" not in present:
                cluster.kubectl("delete", "crd", crd, "--ignore-not-found", "--timeout=60s", check=False)


def test_the_installed_rbac_grants_what_the_operator_uses_and_nothing_more(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    second_namespace: str,
    peering_crds: None,
) -> None:
    operator = f"system:serviceaccount:{namespace}:{FULLNAME}"
    install = ["--namespace", namespace, "--skip-crds", "--wait=false", "--set", "replicaCount=0"]
    install += ["--set", "milvus.lite.enabled=false", "--set", "milvus.uri=http://milvus.example:19530"]
    watched = (namespace, second_namespace)

    # Namespaced mode: Roles in the two watched namespaces, peering on.
    helm(cluster, "install", RELEASE, str(CHART), *install, "--set", "peering.enabled=true",
         "--set", f"watchNamespaces={{{namespace},{second_namespace}}}")  # fmt: skip
    try:
        for ns in watched:
            assert cluster.kubectl("get", "kopfpeering", "vector-operator", "-n", ns, "-o", "name").stdout
            needed = [
                ("list", PLANS), ("watch", COLLECTIONS),
                ("patch", POLICIES), ("get", PLANS),
                ("update", PLANS, "--subresource=status"),
                ("patch", COLLECTIONS, "--subresource=status"),
                ("update", POLICIES, "--subresource=status"),
                ("update", PLANS, "--subresource=finalizers"),
                ("create", "jobs.batch"), ("delete", "jobs.batch"), ("watch", "jobs.batch"),
                ("list", "pods"), ("create", "events"), ("get", "secrets"), ("get", "configmaps"),
                ("create", "configmaps"), ("update", "configmaps"), ("patch", "configmaps"),
                ("get", f"namespaces/{ns}"), ("patch", "kopfpeerings.kopf.dev"),
                ("watch", "kopfpeerings.kopf.dev"),
                ("get", "deployments.apps"), ("create", "deployments.apps"), ("delete", "deployments.apps"),
                ("patch", "deployments.apps"),
            ]  # fmt: skip
            for verb, resource, *extra in needed:
                assert can_i(kubectl, operator, verb, resource, ns, *extra), (verb, resource, ns)
            refused = [
                ("list", "secrets"), ("watch", "secrets"), ("create", "secrets"), ("create", "pods"),
                ("create", "pods", "--subresource=exec"), ("delete", "pods"), ("get", "jobs.batch"),
                ("delete", PLANS), ("create", COLLECTIONS),
                ("update", COLLECTIONS), ("delete", "configmaps"),
                ("list", "deployments.apps"), ("update", "deployments.apps"),
                ("create", ROLES), ("create", ROLEBINDINGS),
                ("escalate", ROLES), ("bind", ROLES),
                ("create", "serviceaccounts", "--subresource=token"), ("impersonate", "serviceaccounts"),
                ("delete", "namespaces"), ("*", "*"),
            ]  # fmt: skip
            for verb, resource, *extra in refused:
                assert not can_i(kubectl, operator, verb, resource, ns, *extra), (verb, resource, ns)
        # Cluster-wide: only the reads it cannot avoid.
        for verb, resource in [
            ("list", "nodes"), ("list", CRDS),
            ("watch", CRDS), ("watch", "namespaces"),
        ]:  # fmt: skip
            assert can_i(kubectl, operator, verb, resource, None), (verb, resource)
        for verb, resource, scope in [
            ("get", "secrets", "default"), ("get", "secrets", "kube-system"), ("get", "secrets", None),
            ("list", PLANS, "default"), ("create", "jobs.batch", "default"),
            ("create", "events", "default"), ("get", "configmaps", "kube-system"), ("list", "pods", None),
            ("get", "nodes", None), ("create", CLUSTERROLES, None),
            ("escalate", CLUSTERROLES, None), ("delete", "namespaces", None),
            ("create", CRDS, None),
            ("patch", "clusterkopfpeerings.kopf.dev", None), ("get", "namespaces/default", "default"),
        ]:  # fmt: skip
            assert not can_i(kubectl, operator, verb, resource, scope), (verb, resource, scope)

        # The worker ServiceAccount: what any fresh account may (self-reviews, discovery), no more.
        kubectl("create", "serviceaccount", "bare")
        bare = rules_of(kubectl, f"system:serviceaccount:{namespace}:bare", namespace)
        assert bare
        assert all(rule.endswith("[create]") or rule.startswith("[/") for rule in bare), bare
        for ns in watched:
            worker = f"system:serviceaccount:{ns}:{WORKER_SA}"
            assert rules_of(kubectl, worker, ns) == bare
            for verb, resource in [
                ("get", "secrets"),
                ("list", "pods"),
                ("get", "configmaps"),
                ("create", "jobs.batch"),
            ]:
                assert not can_i(kubectl, worker, verb, resource, ns), (verb, resource, ns)
    finally:
        helm(cluster, "uninstall", RELEASE, "--namespace", namespace, "--wait", check=False)

    # Cluster mode: the same rules everywhere, peering through a ClusterKopfPeering, still no RBAC verbs.
    clusterwide = f"{FULLNAME}-{namespace}"
    helm(cluster, "install", RELEASE, str(CHART), *install, "--set", "peering.enabled=true")
    try:
        assert cluster.kubectl("get", "clusterrole", clusterwide, "-o", "name").stdout
        for verb, resource, scope in [
            ("get", "secrets", "default"), ("create", "jobs.batch", "default"), ("get", "namespaces", None),
            ("patch", PLANS, None), ("list", "nodes", None),
            ("patch", "clusterkopfpeerings.kopf.dev", None), ("create", "events", "kube-system"),
        ]:  # fmt: skip
            assert can_i(kubectl, operator, verb, resource, scope), (verb, resource, scope)
        for verb, resource, scope in [
            ("list", "secrets", "default"), ("create", "pods", "default"),
            ("create", CLUSTERROLES, None),
            ("create", CLUSTERROLEBINDINGS, None),
            ("bind", CLUSTERROLES, None),
            ("escalate", CLUSTERROLES, None), ("delete", "namespaces", None),
            ("patch", "nodes", None), ("*", "*", None),
        ]:  # fmt: skip
            assert not can_i(kubectl, operator, verb, resource, scope), (verb, resource, scope)
        assert not can_i(kubectl, operator, "create", "pods", "default", "--subresource=exec")
    finally:
        helm(cluster, "uninstall", RELEASE, "--namespace", namespace, "--wait", check=False)
        cluster.kubectl("delete", "clusterkopfpeering", "vector-operator", "--ignore-not-found", check=False)
    gone = cluster.kubectl(
        "get", "clusterrole,clusterrolebinding", clusterwide, "--ignore-not-found", "-o", "name"
    )
    assert gone.stdout == ""
