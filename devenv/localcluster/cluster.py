"""The local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler (one multicall binary built from Go module sources by devenv/build.sh) and our node
agent, all as host processes bound to 127.0.0.1.

`LocalCluster(state_dir).up()` starts it (or returns the one already running there),
`.down()` stops exactly the processes it started, by pid, and removes their state.
Everything lives in the state directory (by default `.devenv/` in the repository):

    kubeconfig            admin kubeconfig (certificates embedded), what users and tests use
    bin/                  kubectl, helm, kubeplane and the control-plane names linked to the build
    cluster.json          ports and pids of the running processes
    pki/  etcd/  logs/  node/
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from localcluster import certificates
from localcluster.certificates import (
    ADMIN,
    CONTROLLER_MANAGER,
    OPERATOR,
    SCHEDULER,
    SERVICE_CIDR,
    ClientIdentity,
    Pki,
    node_identity,
)
from localcluster.ports import free_port, wait_for_port

DEVENV_DIR = Path(__file__).resolve().parent.parent
NODE_NAME = "local-node"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# The controllers the tests and the operator rely on. The node-lifecycle controller lifts the
# `node.kubernetes.io/not-ready` taint that the API server puts on every new node once the node
# agent reports Ready (and marks the node NotReady when its Lease stops being renewed).
CONTROLLERS = (
    "node-lifecycle-controller",
    "serviceaccount-token-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "replicaset-controller",
    "deployment-controller",
    "pod-garbage-collector-controller",
    "endpointslice-controller",
    "resourcequota-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
)
START_TIMEOUT_S = 180.0
AUDIT_LOG_NAME = "audit-vector-operator.log"
# Only the operator's requests are recorded: the suite's own requests would cost disk for nothing.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "users": [OPERATOR.user]}, {"level": "None"}],
}
RESTARTABLE = ("kube-apiserver", "node-agent")


def pinned_versions() -> dict[str, str]:
    """devenv/versions.env: the Kubernetes and helm versions the binaries are built at."""
    lines = (DEVENV_DIR / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


class ClusterError(RuntimeError):
    """The local cluster could not be started or reached; the message says what to do."""


@dataclass
class ManagedProcess:
    name: str
    pid: int
    # The process's /proc cmdline must contain this, so a recycled pid is never signalled.
    marker: str
    # How it was started, so `restart` can start it again the same way.
    command: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return False
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
        return self.marker in cmdline and not zombie


@dataclass
class ClusterState:
    server: str
    ports: dict[str, int]
    processes: list[ManagedProcess] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw = json.loads(text)
        return cls(
            server=raw["server"],
            ports=raw["ports"],
            processes=[ManagedProcess(**p) for p in raw["processes"]],
        )


@dataclass(frozen=True)
class RunningCluster:
    """A running local cluster, as tests and tools see it."""

    state_dir: Path
    server: str

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def bin_dir(self) -> Path:
        return self.state_dir / "bin"

    @property
    def operator_kubeconfig(self) -> Path:
        """A kubeconfig for user `vector-operator` (system:masters): the requests made with it are
        the ones the API server's audit log records."""
        return self.state_dir / "pki" / f"{OPERATOR.file_stem}.kubeconfig"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: one JSON line (audit.k8s.io/v1 Event, level Metadata, stage
        ResponseComplete) per request of user `vector-operator`, and of nobody else."""
        return self.state_dir / "logs" / AUDIT_LOG_NAME

    @property
    def node_dir(self) -> Path:
        return self.state_dir / "node"

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        namespace: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Runs the built kubectl against this cluster; raises with its stderr when `check` fails."""
        command = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig)]
        if namespace:
            command += ["--namespace", namespace]
        command += list(args)
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, command, output=result.stdout, stderr=result.stderr
            )
        return result


class Kubectl:
    """The built kubectl bound to one cluster and, by default, one namespace."""

    def __init__(self, running: RunningCluster, namespace: str | None) -> None:
        self.running = running
        self.namespace = namespace

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        namespace: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        ns = namespace or self.namespace
        return self.running.kubectl(*args, input=input, check=check, namespace=ns, timeout=timeout)


class LocalCluster:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.pki = Pki(self.state_dir / "pki")

    # -- public API -----------------------------------------------------------------------------

    def status(self) -> RunningCluster | None:
        """The running cluster, or None when nothing (alive) was started from this state dir."""
        state = self._read_state()
        if state is None or not all(p.alive() for p in state.processes):
            return None
        return RunningCluster(self.state_dir, state.server)

    def up(self) -> RunningCluster:
        """Starts the cluster, or returns the one already running from this state directory."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            running = self.status()
            if running is not None:
                return running
            self._stop_recorded_processes()
            self._remove_state()
            bin_dir = self._link_binaries(self._build_binaries())
            return self._start(bin_dir)

    def restart(self, name: str, sig: signal.Signals = signal.SIGTERM, down_s: float = 0.0) -> RunningCluster:
        """Stops one component of the running cluster (``sig``, SIGKILL after a grace period),
        leaves it down ``down_s`` seconds, starts it again with the same command and state, and
        waits until it serves: what a control-plane upgrade or a kubelet restart does to the
        clients. Etcd keeps the objects; a restarted node agent reports the pods whose processes it
        lost as Failed."""
        if name not in RESTARTABLE:
            raise ClusterError(f"cannot restart {name!r}: only {', '.join(RESTARTABLE)}")
        with self._lock():
            state = self._read_state()
            running = self.status()
            if state is None or running is None:
                raise ClusterError(f"no running cluster in {self.state_dir} to restart {name} in")
            process = next(p for p in state.processes if p.name == name)
            if not process.command:
                raise ClusterError(f"{name} was started by an older version: restart the cluster")
            if sig is signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                while process.alive():
                    time.sleep(0.05)
            else:
                _terminate(process)
            state.processes.remove(process)
            time.sleep(down_s)
            restarted = self._launch(state, name, process.command, self._environment(name))
            logs = self.state_dir / "logs"
            if name == "kube-apiserver":
                self._wait_ready(restarted, f"{state.server}/readyz", logs, client=ADMIN)
            else:
                self._wait_usable(running, logs)
            return running

    def down(self) -> bool:
        """Stops the processes this state dir records (node agent first) and removes their state.
        Returns whether anything was running."""
        if not self.state_dir.exists():
            return False
        with self._lock():
            stopped = self._stop_recorded_processes()
            self._remove_state()
            return stopped

    # -- state ----------------------------------------------------------------------------------

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "cluster.json"

    def _read_state(self) -> ClusterState | None:
        try:
            return ClusterState.from_json(self._state_file.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.state_dir / ".lock").open("w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _remove_state(self) -> None:
        for name in (
            "cluster.json",
            "kubeconfig",
            "audit-policy.json",
            "pki",
            "etcd",
            "logs",
            "node",
            "apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ):
            path = self.state_dir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def _stop_recorded_processes(self) -> bool:
        state = self._read_state()
        if state is None:
            return False
        any_alive = False
        # Reverse start order: the node agent stops its pods, then the controllers, then storage.
        for process in reversed(state.processes):
            if process.alive():
                any_alive = True
                _terminate(process)
        return any_alive

    # -- binaries -------------------------------------------------------------------------------

    def _build_binaries(self) -> Path:
        """Runs devenv/build.sh (a no-op when the cached build exists); returns the binary dir."""
        result = subprocess.run(
            [str(DEVENV_DIR / "build.sh")], stdout=subprocess.PIPE, text=True, check=False
        )
        if result.returncode != 0:
            raise ClusterError(
                "building the Kubernetes binaries failed (devenv/build.sh); see its output above"
            )
        return Path(result.stdout.strip().splitlines()[-1])

    def _link_binaries(self, build_dir: Path) -> Path:
        bin_dir = self.state_dir / "bin"
        bin_dir.mkdir(exist_ok=True)
        links = {name: build_dir / "kubeplane" for name in (*CONTROL_PLANE, "kubeplane")}
        links["helm"] = build_dir / "helm"
        for name, target in links.items():
            link = bin_dir / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)
        return bin_dir

    # -- start ----------------------------------------------------------------------------------

    def _start(self, bin_dir: Path) -> RunningCluster:
        certificates.generate(self.pki.directory, NODE_NAME)
        logs = self.state_dir / "logs"
        logs.mkdir()
        ports = {
            name: free_port()
            for name in ("etcd-client", "etcd-peer", "apiserver", "controller-manager", "scheduler")
        }
        server = f"https://127.0.0.1:{ports['apiserver']}"
        state = ClusterState(server=server, ports=ports)

        def launch(name: str, command: Sequence[str]) -> ManagedProcess:
            return self._launch(state, name, list(command), self._environment(name))

        try:
            etcd = launch("etcd", self._etcd_command(bin_dir, ports))
            self._wait_port(etcd, ports["etcd-client"], logs)
            apiserver = launch("kube-apiserver", self._apiserver_command(bin_dir, ports))
            self._wait_ready(apiserver, f"{server}/readyz", logs, client=ADMIN)

            for identity in (ADMIN, CONTROLLER_MANAGER, SCHEDULER, OPERATOR, node_identity(NODE_NAME)):
                self._write_kubeconfig(identity, server)
            controller_manager = launch("kube-controller-manager", self._controller_manager_command(ports))
            scheduler = launch("kube-scheduler", self._scheduler_command(ports))
            self._wait_ready(
                controller_manager, f"https://127.0.0.1:{ports['controller-manager']}/healthz", logs
            )
            self._wait_ready(scheduler, f"https://127.0.0.1:{ports['scheduler']}/healthz", logs)

            launch(
                "node-agent",
                [
                    sys.executable,
                    "-m",
                    "localcluster.node_agent",
                    "--kubeconfig",
                    str(self._kubeconfig_path(node_identity(NODE_NAME))),
                    "--node-name",
                    NODE_NAME,
                    "--work-dir",
                    str(self.state_dir / "node"),
                ],
            )
            running = RunningCluster(self.state_dir, server)
            self._wait_usable(running, logs)
            return running
        except BaseException:
            self._stop_recorded_processes()
            raise

    def _launch(
        self, state: ClusterState, name: str, command: list[str], env: dict[str, str] | None
    ) -> ManagedProcess:
        """Starts ``command`` in a session of its own, its output appended to logs/<name>.log, and
        records it in the state file."""
        logs = self.state_dir / "logs"
        with (logs / f"{name}.log").open("ab") as log_file:
            popen = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.state_dir,
                env=env,
            )
        process = ManagedProcess(name, popen.pid, str(self.state_dir), command)
        # Until the child has exec'd, /proc/<pid>/cmdline is still ours: alive() would say no.
        deadline = time.monotonic() + 10
        while popen.poll() is None and not process.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        state.processes.append(process)
        self._state_file.write_text(state.to_json())
        return process

    def _environment(self, name: str) -> dict[str, str] | None:
        """The node agent's environment (the built binaries first on PATH, devenv importable, no
        KUBECONFIG of the caller's); None (inherit) for the others."""
        if name != "node-agent":
            return None
        node_env = dict(os.environ)
        node_env["PATH"] = f"{self.state_dir / 'bin'}{os.pathsep}{node_env.get('PATH', '')}"
        node_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(DEVENV_DIR), node_env.get("PYTHONPATH", "")) if p
        )
        node_env.pop("KUBECONFIG", None)
        node_env["KUBERNETES_VERSION"] = pinned_versions()["KUBERNETES_VERSION"]
        return node_env

    def _etcd_command(self, bin_dir: Path, ports: dict[str, int]) -> list[str]:
        client = f"http://127.0.0.1:{ports['etcd-client']}"
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        return [
            str(bin_dir / "etcd"),
            "--name=local",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=local={peer}",
            "--log-level=warn",
            # A throwaway development store: skipping fsync keeps etcd fast on slow disks.
            "--unsafe-no-fsync",
        ]

    def _apiserver_command(self, bin_dir: Path, ports: dict[str, int]) -> list[str]:
        pki = self.pki
        return [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd-client']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--cert-dir={self.state_dir / 'apiserver'}",
            f"--tls-cert-file={pki.apiserver_cert}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--kubelet-client-certificate={pki.client_cert(certificates.APISERVER_KUBELET_CLIENT)}",
            f"--kubelet-client-key={pki.client_key(certificates.APISERVER_KUBELET_CLIENT)}",
            "--authorization-mode=Node,RBAC",
            # PodSecurity, ServiceAccount, NamespaceLifecycle ... are on by default.
            "--enable-admission-plugins=NodeRestriction",
            "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--allow-privileged=false",
            "--profiling=false",
            f"--audit-policy-file={self._audit_policy()}",
            f"--audit-log-path={self.state_dir / 'logs' / AUDIT_LOG_NAME}",
            "--audit-log-format=json",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=1",
            "--v=1",
        ]

    def _audit_policy(self) -> Path:
        path = self.state_dir / "audit-policy.json"  # JSON is YAML: the API server reads it
        path.write_text(json.dumps(AUDIT_POLICY, indent=2))
        return path

    def _controller_command(self, name: str, identity: ClientIdentity, port: int) -> list[str]:
        """Flags kube-controller-manager and kube-scheduler share: identity, serving, no election."""
        kubeconfig = self._kubeconfig_path(identity)
        return [
            str(self.state_dir / "bin" / name),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.state_dir / name}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]

    def _controller_manager_command(self, ports: dict[str, int]) -> list[str]:
        return [
            *self._controller_command(
                "kube-controller-manager", CONTROLLER_MANAGER, ports["controller-manager"]
            ),
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki.service_account_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--controllers={','.join(CONTROLLERS)}",
        ]

    def _scheduler_command(self, ports: dict[str, int]) -> list[str]:
        return self._controller_command("kube-scheduler", SCHEDULER, ports["scheduler"])

    # -- kubeconfigs ----------------------------------------------------------------------------

    def _kubeconfig_path(self, identity: ClientIdentity) -> Path:
        if identity == ADMIN:
            return self.state_dir / "kubeconfig"
        return self.pki.directory / f"{identity.file_stem}.kubeconfig"

    def _write_kubeconfig(self, identity: ClientIdentity, server: str) -> None:
        """A kubeconfig with the certificates embedded, so it can be copied elsewhere."""

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        name = "vector-operator-local"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {"server": server, "certificate-authority-data": b64(self.pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": identity.user,
                    "user": {
                        "client-certificate-data": b64(self.pki.client_cert(identity)),
                        "client-key-data": b64(self.pki.client_key(identity)),
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": identity.user}}],
            "current-context": name,
        }
        path = self._kubeconfig_path(identity)
        # JSON is valid YAML; kubectl and every client library read it.
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)

    # -- waiting --------------------------------------------------------------------------------

    def _wait_port(self, process: ManagedProcess, port: int, logs: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        if not wait_for_port("127.0.0.1", port, deadline, alive=process.alive):
            raise ClusterError(_failure(process, logs, f"did not listen on 127.0.0.1:{port}"))

    def _wait_ready(
        self, process: ManagedProcess, url: str, logs: Path, client: ClientIdentity | None = None
    ) -> None:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if client is None:
            # Controller-manager and scheduler serve /healthz with a self-signed certificate.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context.load_cert_chain(self.pki.client_cert(client), self.pki.client_key(client))
        deadline = time.monotonic() + START_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            if not process.alive():
                raise ClusterError(_failure(process, logs, "exited"))
            try:
                with urllib.request.urlopen(url, context=context, timeout=5) as response:  # noqa: S310 - https only
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}: {error.read().decode(errors='replace')[-500:]}"
            except OSError as error:
                last = str(error)
            time.sleep(0.5)
        raise ClusterError(_failure(process, logs, f"was not ready at {url} ({last})"))

    def _wait_usable(self, running: RunningCluster, logs: Path) -> None:
        """Until the node is Ready and schedulable, and the default service account exists (pods
        need all of it)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        node = f"node/{NODE_NAME}"
        checks: dict[str, tuple[tuple[str, ...], Callable[[str], bool]]] = {
            "the node agent registered a Ready node": (
                ("wait", "--for=condition=Ready", node, "--timeout=5s"),
                lambda _: True,
            ),
            "the node-lifecycle controller lifted the node's not-ready taint": (
                ("get", node, "-o", "jsonpath={.spec.taints}"),
                lambda taints: "node.kubernetes.io/not-ready" not in taints,
            ),
            "the service-account controller created default/default": (
                ("get", "serviceaccount", "default", "--namespace=default"),
                lambda _: True,
            ),
        }
        state = self._read_state()
        for what, (command, accept) in checks.items():
            while True:
                result = running.kubectl(*command, check=False, timeout=30)
                if result.returncode == 0 and accept(result.stdout):
                    break
                if state is not None:
                    dead = [p for p in state.processes if not p.alive()]
                    if dead:
                        raise ClusterError(_failure(dead[0], logs, "exited"))
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"timed out waiting until {what}: {result.stderr.strip()}; logs in {logs}"
                    )
                time.sleep(0.5)


def _failure(process: ManagedProcess, logs: Path, what: str) -> str:
    log = logs / f"{process.name}.log"
    try:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-25:])
    except OSError:
        tail = "(no log)"
    return f"{process.name} {what}; last lines of {log}:\n{tail}"


def _terminate(process: ManagedProcess, grace_s: float = 20.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace_s` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while process.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    if process.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
