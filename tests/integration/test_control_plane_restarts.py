"""The local cluster's components restarted under a running pod, as `make chaos` does at random:
the node agent must outlive its API server's restart like a kubelet (its heartbeats go on, a pod
that finished while the API server was down is still reported), and a SIGKILLed node agent comes
back and reports the pod whose process it lost.
"""

from __future__ import annotations

import datetime
import json
import signal
import sys
import textwrap
from typing import Any

import pytest
from tests.polling import eventually

from localcluster.cluster import NODE_NAME, Kubectl, LocalCluster, RunningCluster
from localcluster.node_agent import LEASE_RENEW_S

pytestmark = pytest.mark.cluster


def _job(name: str, script: str) -> str:
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "main",
                                "image": "vector-operator:local",
                                "command": [sys.executable, "-c", textwrap.dedent(script)],
                            }
                        ],
                    }
                },
            },
        }
    )


def _pod(kubectl: Kubectl, job: str) -> dict[str, Any] | None:
    listed = json.loads(kubectl("get", "pods", "-l", f"job-name={job}", "-o", "json").stdout)
    return listed["items"][0] if listed["items"] else None


def _lease_renewed(cluster: RunningCluster) -> datetime.datetime:
    lease = json.loads(
        cluster.kubectl("get", "lease", NODE_NAME, "-n", "kube-node-lease", "-o", "json").stdout
    )
    return datetime.datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))


def test_a_pod_that_ends_while_the_api_server_is_down_is_reported_and_the_node_stays_ready(
    cluster: RunningCluster, kubectl: Kubectl
) -> None:
    port = cluster.server.rsplit(":", 1)[1]
    # The pod ends as soon as the API server stops answering: its end is reported while it is down.
    script = f"""
        import os, socket, time
        while True:
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
            except OSError:
                break
            time.sleep(0.1)
        open(os.environ["TERMINATION_MESSAGE_PATH"], "w").write("saw it go")
    """
    kubectl("apply", "-f", "-", input=_job("outlives", script))
    eventually(
        "the pod runs", lambda: (p := _pod(kubectl, "outlives")) and p["status"].get("phase") == "Running"
    )

    down_s = LEASE_RENEW_S + 5  # at least one heartbeat meets a dead API server
    LocalCluster(cluster.state_dir).restart("kube-apiserver", signal.SIGKILL, down_s=down_s)
    back = datetime.datetime.now(datetime.UTC).replace(microsecond=0)

    pod = eventually(
        "the pod's end is reported after the restart",
        lambda: (p := _pod(kubectl, "outlives")) and p["status"].get("phase") == "Succeeded" and p,
        timeout=120,
    )
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == "saw it go"
    kubectl("wait", "--for=condition=Complete", "job/outlives", "--timeout=60s")
    eventually(
        "the node agent renews its lease again",
        lambda: _lease_renewed(cluster) > back,
        timeout=3 * LEASE_RENEW_S,
    )
    node = json.loads(cluster.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    assert not [t for t in node["spec"].get("taints") or [] if "unreachable" in t["key"]]


def test_a_killed_node_agent_comes_back_and_reports_the_pod_it_lost(
    cluster: RunningCluster, kubectl: Kubectl
) -> None:
    kubectl("apply", "-f", "-", input=_job("orphaned", "import time; time.sleep(30)"))
    eventually(
        "the pod runs", lambda: (p := _pod(kubectl, "orphaned")) and p["status"].get("phase") == "Running"
    )

    LocalCluster(cluster.state_dir).restart("node-agent", signal.SIGKILL)

    pod = eventually(
        "the restarted agent reports the pod it lost",
        lambda: (p := _pod(kubectl, "orphaned")) and p["status"].get("phase") == "Failed" and p,
        timeout=60,
    )
    assert pod["status"]["reason"] == "NodeAgentRestarted"
    assert LocalCluster(cluster.state_dir).status() is not None  # every component alive again
