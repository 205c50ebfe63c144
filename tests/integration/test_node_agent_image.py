"""Pods whose image is in local storage run from the image's filesystem on the local node.

A tiny image (Debian's static busybox, built from scratch with buildah for this module, removed
afterwards) runs through the real API server, scheduler and node agent: the agent creates a
buildah working container, enters it with unshare + chroot and reports back. What the container
sees is collected by the container itself (its termination message, files in its emptyDir).
Needs root with Debian's `buildah` and `busybox-static`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.polling import eventually

from localcluster.cluster import Kubectl, RunningCluster

pytestmark = pytest.mark.cluster

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "id", "ls", "echo", "sleep", "touch", "test", "pwd", "grep", "env", "true")
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class LocalImage:
    name: str
    id: str


def statically_linked(path: Path) -> bool:
    """A 64-bit ELF without a PT_INTERP program header (no dynamic loader needed): Debian's
    busybox-static, not the dynamically linked busybox that the `busybox` package installs."""
    data = path.read_bytes()
    if data[:5] != b"\x7fELF\x02":
        return False
    offset, size, count = (int.from_bytes(data[a:b], "little") for a, b in ((32, 40), (54, 56), (56, 58)))
    starts = (offset + i * size for i in range(count))
    program_types = (int.from_bytes(data[start : start + 4], "little") for start in starts)
    return 3 not in program_types


def buildah(*args: str) -> str:
    return subprocess.run(["buildah", *args], check=True, capture_output=True, text=True, timeout=120).stdout


@pytest.fixture(scope="module")
def busybox_image() -> Iterator[LocalImage]:
    """localhost/vo-test-busybox:<unique>: busybox, a marker file, users root and app (2000, also
    in group extra), a world-writable /writable; Entrypoint sh -c, User app, WorkingDir /home/app."""
    if (
        os.geteuid() != 0
        or not shutil.which("buildah")
        or not BUSYBOX.is_file()
        or not statically_linked(BUSYBOX)
    ):
        pytest.fail(
            "needs root and Debian's buildah and busybox-static: apt-get install -y buildah busybox-static"
        )
    name = f"localhost/vo-test-busybox:{uuid.uuid4().hex[:10]}"
    container = buildah("from", "scratch").strip()
    try:
        root = Path(buildah("mount", container).strip())
        for directory in ("bin", "etc", "home/app", "writable"):
            (root / directory).mkdir(parents=True)
        shutil.copy2(BUSYBOX, root / "bin/busybox")
        for applet in APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        (root / "etc/os-release").write_text("ID=vo-test-busybox\n")
        (root / "marker").write_text("baked into the image\n")
        (root / "etc/passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\napp:x:2000:2000:app:/home/app:/bin/sh\n"
        )
        (root / "etc/group").write_text("root:x:0:\napp:x:2000:\nextra:x:3000:app\n")
        (root / "writable").chmod(0o777)
        os.chown(root / "home/app", 2000, 2000)
        buildah("umount", container)
        buildah(
            "config", "--env", "PATH=/bin", "--env", "VO_FROM_IMAGE=yes",
            "--entrypoint", '["/bin/sh", "-c"]', "--cmd", '["echo from the image Cmd"]',
            "--workingdir", "/home/app", "--user", "app", container,
        )  # fmt: skip
        buildah("commit", "-q", container, name)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    image_id = json.loads(buildah("inspect", "--type", "image", name))["FromImageID"]
    try:
        yield LocalImage(name, image_id)
    finally:
        subprocess.run(["buildah", "rmi", "-f", name], capture_output=True, check=False)


def create_pod(kubectl: Kubectl, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    # The ServiceAccount admission refuses pods until the namespace's default account exists.
    eventually(
        "the default ServiceAccount exists",
        lambda: kubectl("get", "sa", "default", check=False).returncode == 0,
    )
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    created: dict[str, Any] = json.loads(
        kubectl("create", "-o", "json", "-f", "-", input=json.dumps(manifest)).stdout
    )
    return created


def get_pod(kubectl: Kubectl, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = json.loads(kubectl("get", "pod", name, "-o", "json").stdout)
    return pod


def working_containers(uid: str) -> list[str]:
    listed = json.loads(buildah("containers", "--json") or "null") or []
    return [c["containername"] for c in listed if c["containername"].endswith(uid)]


def pod_dir(cluster: RunningCluster, pod: dict[str, Any]) -> Path:
    metadata = pod["metadata"]
    return cluster.node_dir / "pods" / f"{metadata['namespace']}_{metadata['name']}_{metadata['uid']}"


def facts(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_a_pod_runs_inside_its_image_with_volumes_user_and_read_only_root(
    kubectl: Kubectl, cluster: RunningCluster, busybox_image: LocalImage
) -> None:
    kubectl("create", "configmap", "settings", "--from-literal=MODE=fast")
    # `$(...)` naming no variable stays as written; `$$$$` is the shell's `$$` (Kubernetes' escape).
    script = textwrap.dedent(
        f"""
        echo "hello from the image"
        {{
        echo "os=$(grep ^ID= /etc/os-release)"
        echo "marker=$(cat /marker)"
        test -e /work && echo "work=present" || echo "work=absent"
        echo "uid=$(id -u)"
        echo "pid=$$$$"
        echo "pwd=$(pwd)"
        touch /writable/x 2>/dev/null && echo "rootfs=writable" || echo "rootfs=read-only"
        echo "scratch=$(echo written > /scratch/f && cat /scratch/f)"
        echo "tmp=$(touch /tmp/t && echo writable)"
        echo "settings=$(cat /etc/settings/MODE)"
        touch /etc/settings/x 2>/dev/null && echo "settings-write=allowed" || echo "settings-write=refused"
        echo "namespace=$(cat {SERVICE_ACCOUNT_DIR}/namespace)"
        test -s {SERVICE_ACCOUNT_DIR}/token && echo "token=present" || echo "token=missing"
        grep -q "BEGIN CERTIFICATE" {SERVICE_ACCOUNT_DIR}/ca.crt && echo "ca=present" || echo "ca=missing"
        echo "service=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
        echo "env=$VO_FROM_IMAGE,$GREETING"
        }} > /dev/termination-log
        """
    )
    spec = {
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": 1000},
        "containers": [
            {
                "name": "main",
                "image": busybox_image.name,
                "args": [script],  # run by the image's Entrypoint (sh -c)
                "env": [{"name": "GREETING", "value": "hello"}],
                "securityContext": {"readOnlyRootFilesystem": True},
                "volumeMounts": [
                    {"name": "scratch", "mountPath": "/scratch"},
                    {"name": "settings", "mountPath": "/etc/settings", "readOnly": True},
                ],
            }
        ],
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "settings", "configMap": {"name": "settings"}},
        ],
    }
    uid = create_pod(kubectl, "inside", spec)["metadata"]["uid"]
    kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/inside", "--timeout=120s")

    pod = get_pod(kubectl, "inside")
    status = pod["status"]["containerStatuses"][0]
    assert status["image"] == busybox_image.name
    assert status["imageID"] == f"sha256:{busybox_image.id}"
    terminated = status["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["containerID"].startswith("buildah://")
    server = cluster.server.removeprefix("https://")
    assert facts(terminated["message"]) == {
        "os": "ID=vo-test-busybox",
        "marker": "baked into the image",
        "work": "absent",  # the host's filesystem is not there
        "uid": "1000",
        "pid": "1",  # PID 1 of its own PID namespace
        "pwd": "/home/app",
        "rootfs": "read-only",
        "scratch": "written",
        "tmp": "writable",
        "settings": "fast",
        "settings-write": "refused",
        "namespace": kubectl.namespace,
        "token": "present",
        "ca": "present",
        "service": server,
        "env": "yes,hello",
    }
    assert "hello from the image" in (pod_dir(cluster, pod) / "container.log").read_text()
    eventually("the working container is removed", lambda: working_containers(uid) == [], 30)


def test_a_deleted_image_pod_gets_sigterm_inside_and_its_working_container_is_removed(
    kubectl: Kubectl, cluster: RunningCluster, busybox_image: LocalImage
) -> None:
    script = textwrap.dedent(
        """
        f=/scratch/facts
        trap 'echo "stopped=by SIGTERM" >> $f; exit 0' TERM
        echo "uid=$(id -u) $(id -G)" >> $f
        touch /writable/x && echo "rootfs=writable" >> $f
        echo "argv0=$0" >> $f
        echo "ready=yes" >> $f
        while true; do sleep 1; done
        """
    )
    spec = {
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 20,
        "containers": [
            {
                "name": "main",
                "image": busybox_image.name,
                "command": ["/bin/sh", "-c", script, "overridden"],  # instead of the Entrypoint and Cmd
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            }
        ],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    pod = create_pod(kubectl, "sleeper", spec)
    uid = pod["metadata"]["uid"]
    facts_file = pod_dir(cluster, pod) / "volumes" / "scratch" / "facts"
    eventually(
        "the container is ready", lambda: facts_file.exists() and "ready=yes" in facts_file.read_text()
    )
    assert working_containers(uid), "a working container runs the pod"
    assert get_pod(kubectl, "sleeper")["status"]["phase"] == "Running"

    kubectl("delete", "pod", "sleeper", "--wait=false")
    kubectl("wait", "--for=delete", "pod/sleeper", "--timeout=60s")
    assert facts(facts_file.read_text()) == {
        "uid": "2000 2000 3000",  # the image's User, its group and its membership of extra
        "rootfs": "writable",
        "argv0": "overridden",
        "ready": "yes",
        "stopped": "by SIGTERM",  # the TERM reached the container's PID 1, which handles it
    }
    eventually("the working container is removed", lambda: working_containers(uid) == [], 30)
    spec_file = str(pod_dir(cluster, pod) / "container-spec.json")
    running = subprocess.run(["pgrep", "-f", spec_file], capture_output=True, text=True, check=False)
    assert running.stdout == "", "no process of the pod is left"


def test_an_image_pod_mounts_its_claims_host_path_volume_read_write_and_read_only(
    kubectl: Kubectl, busybox_image: LocalImage, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "seed.txt").write_text("planted before the pod\n")
    volume = f"{kubectl.namespace}-data"
    common = {"storageClassName": "manual", "accessModes": ["ReadWriteOnce"]}
    persistent_volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume},
        "spec": {
            **common,
            "capacity": {"storage": "1Gi"},
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(data), "type": "Directory"},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {**common, "volumeName": volume, "resources": {"requests": {"storage": "1Gi"}}},
    }
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [persistent_volume, claim]}),
    )
    try:
        eventually(
            "the PV binder binds the claim",
            lambda: kubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase}").stdout == "Bound",
            60,
        )
        script = textwrap.dedent(
            """
            {
            echo "seed=$(cat /data/seed.txt)"
            echo "written=$(echo from the image > /data/new.txt && cat /data/new.txt)"
            echo "seed-ro=$(cat /data-ro/seed.txt)"
            touch /data-ro/x 2>/dev/null && echo "mount-ro=writable" || echo "mount-ro=refused"
            echo "seed-frozen=$(cat /frozen/seed.txt)"
            touch /frozen/x 2>/dev/null && echo "claim-ro=writable" || echo "claim-ro=refused"
            } > /dev/termination-log
            """
        )
        spec = {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 0},  # only a read-only mount stops root writing
            "containers": [
                {
                    "name": "main",
                    "image": busybox_image.name,
                    "args": [script],
                    "volumeMounts": [
                        {"name": "store", "mountPath": "/data"},
                        {"name": "store", "mountPath": "/data-ro", "readOnly": True},
                        {"name": "frozen", "mountPath": "/frozen"},
                    ],
                }
            ],
            "volumes": [
                {"name": "store", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "frozen", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
            ],
        }
        create_pod(kubectl, "claimant", spec)
        kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/claimant", "--timeout=120s")

        terminated = get_pod(kubectl, "claimant")["status"]["containerStatuses"][0]["state"]["terminated"]
        assert facts(terminated["message"]) == {
            "seed": "planted before the pod",
            "written": "from the image",
            "seed-ro": "planted before the pod",
            "mount-ro": "refused",
            "seed-frozen": "planted before the pod",
            "claim-ro": "refused",
        }
        assert (data / "new.txt").read_text() == "from the image\n"  # in the volume, after the pod
        assert sorted(p.name for p in data.iterdir()) == ["new.txt", "seed.txt"]
    finally:
        kubectl("delete", "pod", "claimant", "--wait=false", "--ignore-not-found", check=False)
        kubectl("delete", "pvc", "data", "--wait=false", "--ignore-not-found", check=False)
        kubectl("delete", "pv", volume, "--wait=false", "--ignore-not-found", check=False)
