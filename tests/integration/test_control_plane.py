"""The local control plane built from source answers like a real cluster, through the built kubectl."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from localcluster.cluster import Kubectl, LocalCluster, RunningCluster, pinned_versions

pytestmark = pytest.mark.cluster

PINNED = pinned_versions()


def test_kubectl_version_shows_the_pinned_version_without_skew_warnings(cluster: RunningCluster) -> None:
    result = cluster.kubectl("version", "--output=json")
    versions = json.loads(result.stdout)
    assert versions["clientVersion"]["gitVersion"] == PINNED["KUBERNETES_VERSION"]
    assert versions["serverVersion"]["gitVersion"] == PINNED["KUBERNETES_VERSION"]
    assert "WARNING" not in result.stderr


def test_helm_targets_the_same_kubernetes_version(cluster: RunningCluster, tmp_path: Path) -> None:
    helm = str(cluster.bin_dir / "helm")
    version = subprocess.run([helm, "version", "--short"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith(PINNED["HELM_VERSION"])
    subprocess.run([helm, "create", str(tmp_path / "probe")], capture_output=True, check=True)
    (tmp_path / "probe" / "templates" / "capabilities.yaml").write_text(
        "kubeVersion: {{ .Capabilities.KubeVersion.Version }}\n"
    )
    rendered = subprocess.run(
        [helm, "template", str(tmp_path / "probe"), "--show-only", "templates/capabilities.yaml"],
        capture_output=True,
        text=True,
        check=True,
    )
    # Without a cluster, helm's capabilities carry the Kubernetes minor it was built for (patch 0).
    major, minor, _ = PINNED["KUBERNETES_VERSION"].lstrip("v").split(".")
    assert f"kubeVersion: v{major}.{minor}.0" in rendered.stdout


def test_apply_get_wait_round_trip(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=CONFIGMAP)
    got = json.loads(kubectl("get", "configmap", "greeting", "-o", "json").stdout)
    assert got["data"] == {"hello": "world"}

    kubectl("apply", "-f", "-", input=CONFIGMAP.replace("world", "again"))
    kubectl("wait", "configmap/greeting", "--for=jsonpath={.data.hello}=again", "--timeout=30s")


def test_restricted_pod_security_rejects_a_pod_that_breaks_it(kubectl: Kubectl, namespace: str) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    result = kubectl("apply", "-f", "-", input=UNRESTRICTED_POD, check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr
    assert "allowPrivilegeEscalation != false" in result.stderr
    assert "runAsNonRoot != true" in result.stderr
    # The same pod, made to meet the restricted standard, is admitted.
    kubectl("apply", "-f", "-", input=RESTRICTED_POD)


def test_a_second_up_returns_the_running_cluster(cluster: RunningCluster) -> None:
    again = LocalCluster(cluster.state_dir).up()
    assert again.server == cluster.server


def test_the_control_plane_listens_only_on_loopback(cluster: RunningCluster) -> None:
    state = json.loads((cluster.state_dir / "cluster.json").read_text())
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    ours = {port for port in state["ports"].values()}
    seen = {}
    for line in listening:
        fields = line.split()
        local, status = fields[1], fields[3]
        address_hex, port_hex = local.split(":")
        if status == "0A" and int(port_hex, 16) in ours:  # 0A: LISTEN
            seen[int(port_hex, 16)] = address_hex
    assert seen, "none of the control plane's ports is listening"
    assert set(seen.values()) == {"0100007F"}, f"bound beyond 127.0.0.1: {seen}"


CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: greeting}
data: {hello: world}
"""

UNRESTRICTED_POD = """
apiVersion: v1
kind: Pod
metadata: {name: unrestricted}
spec:
  containers:
    - name: main
      image: busybox
      command: ["true"]
"""

RESTRICTED_POD = """
apiVersion: v1
kind: Pod
metadata: {name: restricted}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: main
      image: busybox
      command: ["true"]
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def test_down_stops_exactly_what_up_started_and_removes_its_state(
    cluster: RunningCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A second, private cluster: up, up again (same one), down (its pids gone, state removed),
    while the session's cluster keeps running."""
    private = LocalCluster(tmp_path_factory.mktemp("private-cluster"))
    running = private.up()
    try:
        pids = [p["pid"] for p in json.loads((private.state_dir / "cluster.json").read_text())["processes"]]
        assert len(pids) == 5  # etcd, apiserver, controller-manager, scheduler, node agent
        assert private.up().server == running.server
        assert running.kubectl("get", "nodes", "-o", "name").stdout.strip() == "node/local-node"
    finally:
        assert private.down() is True
    assert all(not Path(f"/proc/{pid}").exists() or _is_zombie(pid) for pid in pids)
    assert private.status() is None
    assert not (private.state_dir / "cluster.json").exists()
    assert not (private.state_dir / "etcd").exists()
    assert not (private.state_dir / "kubeconfig").exists()
    assert private.down() is False
    # The session's cluster was not touched.
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True
