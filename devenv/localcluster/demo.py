"""`python -m localcluster.demo up|down`: the quickstart, end to end, on the local cluster.

`up` brings the local cluster up (or reuses it), starts a Milvus Lite server and the operator as
background processes (pids in `.devenv/demo.json`, logs in `.devenv/logs/`), builds the
quickstart's SQLite source, applies the CRDs, the namespace and the quickstart, waits until the
MigrationPlan has finished and prints what `kubectl get` shows. `down` stops the operator and
Milvus Lite (the cluster stays: `make cluster-down` stops it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from localcluster.cluster import LocalCluster, RunningCluster
from localcluster.host_worker import host_worker_args
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.ports import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
NAMESPACE = "vector-demo"
PLAN = "articles-backfill"
WAIT_S = 900


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def down(state_dir: Path) -> bool:
    state_file = state_dir / "demo.json"
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    for name in ("operator", "milvus"):
        pid = state.get(name)
        if pid and _alive(pid):
            _stop(pid)
    state_file.unlink()
    return True


def up(state_dir: Path) -> int:
    running = LocalCluster(state_dir).up()
    down(state_dir)  # a previous demo's processes: replaced, not duplicated
    logs = state_dir / "logs"
    logs.mkdir(exist_ok=True)

    milvus_port = free_port()
    milvus = MilvusLiteServer(state_dir / "milvus", port=milvus_port, log_path=logs / "milvus-lite.log")
    milvus.start()
    state = {"milvus": milvus.pid}
    (state_dir / "demo.json").write_text(json.dumps(state))

    source = state_dir / "quickstart" / "articles.db"
    source.parent.mkdir(exist_ok=True)
    source.unlink(missing_ok=True)
    with sqlite3.connect(source) as connection:
        connection.executescript((REPO_ROOT / "examples" / "quickstart" / "articles.sql").read_text())

    kubectl = running.kubectl
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    for crd in ("vectorcollections", "migrationplans", "rollbackpolicies"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}.vectors.aios.dev", "--timeout=60s")
    kubectl("apply", "-f", str(REPO_ROOT / "examples" / "namespace.yaml"))

    env = {**os.environ, "KUBECONFIG": str(running.kubeconfig), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "vector_operator.cli", "run", "--namespace", NAMESPACE]
    command += ["--milvus-uri", milvus.uri, "--metrics-port", str(free_port()), "--plan-interval", "2"]
    command += host_worker_args()
    with (logs / "operator.log").open("ab") as log:
        operator = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    state["operator"] = operator.pid
    (state_dir / "demo.json").write_text(json.dumps(state))

    manifest = (REPO_ROOT / "examples" / "quickstart" / "quickstart.yaml").read_text()
    manifest = manifest.replace(
        "sqlite:////tmp/vector-operator-quickstart/articles.db", f"sqlite:///{source}"
    )
    kubectl("apply", "--namespace", NAMESPACE, "-f", "-", input=manifest)
    print(f"applied the quickstart in namespace {NAMESPACE}; waiting for the migration")
    phase = _wait_for_plan(running, operator)
    print()
    print(kubectl("get", "vectors", "--namespace", NAMESPACE).stdout)
    print(kubectl("describe", "migrationplan", PLAN, "--namespace", NAMESPACE).stdout[-2500:])
    print(f"Milvus Lite: {milvus.uri}   operator log: {logs / 'operator.log'}")
    print(f"export KUBECONFIG={running.kubeconfig} PATH={running.bin_dir}:$PATH")
    print("make demo-down stops the operator and Milvus Lite; make cluster-down stops everything.")
    return 0 if phase == "Succeeded" else 1


def _wait_for_plan(running: RunningCluster, operator: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + WAIT_S
    last = ""
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            print("the operator exited; see .devenv/logs/operator.log", file=sys.stderr)
            return "OperatorExited"
        result = running.kubectl(
            "get", "migrationplan", PLAN, "--namespace", NAMESPACE, "--no-headers", check=False
        )
        line = " ".join(result.stdout.split())
        if line and line != last:
            print(f"  {line}")
            last = line
        fields = result.stdout.split()
        if len(fields) > 1 and fields[1] in ("Succeeded", "Failed", "RolledBack"):
            return fields[1]
        time.sleep(2)
    return "TimedOut"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster.demo", description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".devenv")
    args = parser.parse_args(argv)
    if args.command == "down":
        print(
            "stopped the demo's operator and Milvus Lite" if down(args.state_dir) else "no demo was running"
        )
        return 0
    return up(args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
