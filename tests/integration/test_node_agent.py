"""Jobs and pods run through the real control plane and the local node agent.

The real Job controller creates pods, the real scheduler binds them to the local node, the node
agent runs them as host processes and reports back; every assertion reads what a user reads:
Job conditions, pod status, termination messages.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.polling import eventually

from localcluster.cluster import NODE_NAME, Kubectl, RunningCluster

pytestmark = pytest.mark.cluster

PYTHON = sys.executable


def job(name: str, script: str, backoff_limit: int = 0, **pod_spec: Any) -> str:
    """A batch/v1 Job manifest running `script` with this interpreter."""
    container: dict[str, Any] = {
        "name": "main",
        "image": "vector-operator:local",
        "command": [PYTHON, "-c", textwrap.dedent(script)],
        **pod_spec.pop("container", {}),
    }
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [container], **pod_spec},
            },
        },
    }
    return json.dumps(manifest)


def pods_of(kubectl: Kubectl, job_name: str) -> list[dict[str, Any]]:
    listed = json.loads(kubectl("get", "pods", "-l", f"job-name={job_name}", "-o", "json").stdout)
    items: list[dict[str, Any]] = listed["items"]
    return items


def test_a_job_completes_with_its_environment_and_termination_message(kubectl: Kubectl) -> None:
    kubectl("create", "secret", "generic", "db", "--from-literal=url=sqlite:///tmp/x.db")
    kubectl("create", "configmap", "settings", "--from-literal=MODE=fast")
    script = """
        import json, os
        result = {k: os.environ.get(k) for k in ("DB_URL", "MODE", "POD_NAME", "POD_NAMESPACE", "BATCH")}
        with open(os.environ["TERMINATION_MESSAGE_PATH"], "w") as f:
            json.dump(result, f)
        print("done")
    """
    container = {
        "env": [
            {"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "BATCH", "value": "batch-$(MODE)"},
        ],
        "envFrom": [{"configMapRef": {"name": "settings"}}],
    }
    kubectl("apply", "-f", "-", input=job("hello", script, container=container))
    kubectl("wait", "--for=condition=Complete", "job/hello", "--timeout=120s")

    (pod,) = pods_of(kubectl, "hello")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["spec"]["nodeName"] == "local-node"  # bound by the real scheduler
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"
    assert json.loads(terminated["message"]) == {
        "DB_URL": "sqlite:///tmp/x.db",
        "MODE": "fast",
        "POD_NAME": pod["metadata"]["name"],
        "POD_NAMESPACE": kubectl.namespace,
        "BATCH": "batch-fast",
    }
    succeeded = json.loads(kubectl("get", "job", "hello", "-o", "json").stdout)["status"]["succeeded"]
    assert succeeded == 1


def test_a_failing_job_is_retried_up_to_its_backoff_limit_then_failed(kubectl: Kubectl) -> None:
    script = """
        import os, sys
        open(os.environ["TERMINATION_MESSAGE_PATH"], "w").write("source unreachable")
        sys.exit(3)
    """
    kubectl("apply", "-f", "-", input=job("doomed", script, backoff_limit=2))
    kubectl("wait", "--for=condition=Failed", "job/doomed", "--timeout=240s")

    status = json.loads(kubectl("get", "job", "doomed", "-o", "json").stdout)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert status["failed"] == 3  # the first try and backoffLimit=2 retries
    pods = pods_of(kubectl, "doomed")
    assert len(pods) == 3
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (
            3,
            "Error",
            "source unreachable",
        )


def test_deleting_a_job_in_the_background_removes_its_pods(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=job("sleeper", "import time; time.sleep(600)"))
    eventually(
        "the pod runs",
        lambda: any(p["status"].get("phase") == "Running" for p in pods_of(kubectl, "sleeper")),
    )
    kubectl("delete", "job", "sleeper", "--cascade=background", "--wait=false")
    # The garbage collector deletes the orphaned pod, the node stops its process and removes it.
    eventually("the garbage collector removed the job's pods", lambda: pods_of(kubectl, "sleeper") == [], 120)


def test_a_deleted_pod_gets_sigterm_and_is_removed(kubectl: Kubectl, tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    script = f"""
        import signal, sys, time
        def stop(signum, frame):
            open({str(marker)!r}, "w").write(f"signal {{signum}}")
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        time.sleep(600)
    """
    kubectl("apply", "-f", "-", input=job("graceful", script))
    pod = eventually(
        "the pod runs",
        lambda: next(
            (p for p in pods_of(kubectl, "graceful") if p["status"].get("phase") == "Running"), None
        ),
    )
    name = pod["metadata"]["name"]
    kubectl("delete", "pod", name, "--wait=false")
    kubectl("wait", "--for=delete", f"pod/{name}", "--timeout=60s")
    assert marker.read_text() == f"signal {signal.SIGTERM.value}"


def test_active_deadline_seconds_stops_the_pod(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=job("slow", "import time; time.sleep(600)", activeDeadlineSeconds=3))
    pod = eventually(
        "the pod failed on its deadline",
        lambda: next((p for p in pods_of(kubectl, "slow") if p["status"].get("phase") == "Failed"), None),
    )
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


def test_a_pod_the_node_cannot_run_fails_with_the_missing_feature(kubectl: Kubectl) -> None:
    manifest = job(
        "needs-storage",
        "print(1)",
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        volumes=[{"name": "data", "hostPath": {"path": "/srv/data"}}],
    )
    kubectl("apply", "-f", "-", input=manifest)
    kubectl("wait", "--for=condition=Failed", "job/needs-storage", "--timeout=120s")
    (pod,) = pods_of(kubectl, "needs-storage")
    assert pod["status"]["reason"] == "UnsupportedByLocalNode"
    assert "volume 'data' of type hostPath" in pod["status"]["message"]


def test_a_pod_waits_for_a_missing_secret_then_runs(kubectl: Kubectl) -> None:
    container = {"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "late", "key": "token"}}}]}
    script = "import os; open(os.environ['TERMINATION_MESSAGE_PATH'], 'w').write(os.environ['TOKEN'])"
    kubectl("apply", "-f", "-", input=job("patient", script, container=container))
    waiting = eventually(
        "the container waits on its configuration",
        lambda: next(
            (
                s["state"]["waiting"]
                for p in pods_of(kubectl, "patient")
                for s in p["status"].get("containerStatuses", [])
                # Right after binding, the Node authorizer may not yet let the node read the
                # Secret (a transient "cannot read"): wait for the answer about the Secret itself.
                if "not found" in s["state"].get("waiting", {}).get("message", "")
            ),
            None,
        ),
    )
    assert waiting["reason"] == "CreateContainerConfigError"
    assert 'secret "late" not found' in waiting["message"]

    kubectl("create", "secret", "generic", "late", "--from-literal=token=arrived")
    kubectl("wait", "--for=condition=Complete", "job/patient", "--timeout=120s")
    (pod,) = pods_of(kubectl, "patient")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == "arrived"


def claim_manifests(volume: str, path: Path, claim: str) -> str:
    """A hostPath PersistentVolume (Retain) and a claim that names it, for the real PV binder."""
    common = {"storageClassName": "manual", "accessModes": ["ReadWriteOnce"]}
    items = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                **common,
                "capacity": {"storage": "1Gi"},
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(path), "type": "Directory"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {**common, "volumeName": volume, "resources": {"requests": {"storage": "1Gi"}}},
        },
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


BindClaim = Callable[[str], Path]


@pytest.fixture
def bind_claim(kubectl: Kubectl, tmp_path: Path) -> Iterator[BindClaim]:
    """Creates a claim of the test's namespace and a hostPath PersistentVolume for it, waits until
    the real PV binder has bound them, and returns the volume's directory, which already holds
    `seed.txt`. The PersistentVolumes (cluster-scoped) are deleted afterwards."""
    volumes: list[str] = []

    def bind(claim: str) -> Path:
        data = tmp_path / claim
        data.mkdir()
        (data / "seed.txt").write_text("planted before the pod")
        volume = f"{kubectl.namespace}-{claim}"
        volumes.append(volume)
        kubectl("apply", "-f", "-", input=claim_manifests(volume, data, claim))
        eventually(
            f"the PV binder (persistentvolume-binder-controller) binds claim {claim}",
            lambda: kubectl("get", "pvc", claim, "-o", "jsonpath={.status.phase}").stdout == "Bound",
            60,
        )
        return data

    yield bind
    for volume in volumes:
        claim = volume.removeprefix(f"{kubectl.namespace}-")
        kubectl("delete", "pvc", claim, "--wait=false", "--ignore-not-found", check=False)
        kubectl("delete", "pv", volume, "--wait=false", "--ignore-not-found", check=False)


def test_a_pod_reads_and_writes_the_host_path_volume_of_its_claim(
    kubectl: Kubectl, cluster: RunningCluster, bind_claim: BindClaim
) -> None:
    data = bind_claim("data")
    script = """
        import json, os
        data = json.loads(os.environ["LOCALNODE_VOLUME_MOUNTS"])["/data"]
        print("read:", open(os.path.join(data, "seed.txt")).read())
        with open(os.path.join(data, f"from-{os.environ['POD_NAME']}.txt"), "w") as f:
            f.write("written by the pod")
    """
    container = {
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "store", "mountPath": "/data"}],
    }
    volumes = [{"name": "store", "persistentVolumeClaim": {"claimName": "data"}}]
    kubectl("apply", "-f", "-", input=job("keeper", script, container=container, volumes=volumes))
    kubectl("wait", "--for=condition=Complete", "job/keeper", "--timeout=120s")

    (pod,) = pods_of(kubectl, "keeper")
    assert pod["status"]["phase"] == "Succeeded"
    metadata = pod["metadata"]
    pod_dir = cluster.node_dir / "pods" / f"{metadata['namespace']}_{metadata['name']}_{metadata['uid']}"
    assert "read: planted before the pod" in (pod_dir / "container.log").read_text()
    # Written into the PersistentVolume's own directory: there after the pod, for the next one.
    assert (data / f"from-{metadata['name']}.txt").read_text() == "written by the pod"
    assert (data / "seed.txt").read_text() == "planted before the pod"


def test_a_pod_on_the_node_waits_for_its_missing_claim_then_runs(
    kubectl: Kubectl, bind_claim: BindClaim
) -> None:
    # nodeName set: no scheduler (which holds back a pod whose claim is unbound) in between.
    script = """
        import json, os
        data = json.loads(os.environ["LOCALNODE_VOLUME_MOUNTS"])["/data"]
        open(os.environ["TERMINATION_MESSAGE_PATH"], "w").write(open(os.path.join(data, "seed.txt")).read())
    """
    manifest = job(
        "claimant",
        script,
        nodeName=NODE_NAME,
        container={"volumeMounts": [{"name": "store", "mountPath": "/data"}]},
        volumes=[{"name": "store", "persistentVolumeClaim": {"claimName": "late"}}],
    )
    kubectl("apply", "-f", "-", input=manifest)
    waiting = eventually(
        "the container waits on its claim",
        lambda: next(
            (
                s["state"]["waiting"]
                for p in pods_of(kubectl, "claimant")
                for s in p["status"].get("containerStatuses", [])
                if "not found" in s["state"].get("waiting", {}).get("message", "")
            ),
            None,
        ),
    )
    assert waiting["reason"] == "CreateContainerConfigError"
    assert 'volume "store": persistentvolumeclaim "late" not found' in waiting["message"]

    bind_claim("late")
    kubectl("wait", "--for=condition=Complete", "job/claimant", "--timeout=120s")
    (pod,) = pods_of(kubectl, "claimant")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == "planted before the pod"
