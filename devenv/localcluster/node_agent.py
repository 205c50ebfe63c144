"""The local node: our stand-in for the kubelet.

`python -m localcluster.node_agent --kubeconfig K --node-name N --work-dir D` registers a Ready
Node (with the node's own credentials, so the API server's Node authorizer and NodeRestriction
admission apply to it as to a kubelet), keeps its Lease and heartbeat, and runs every pod the
scheduler binds to it:

- the pod's one container runs from its image's filesystem when the image is in buildah's local
  containers-storage (image_runtime: a working container, `unshare` + `chroot`, volumes mounted at
  their mountPaths, the image's Entrypoint/Cmd/Env/User/WorkingDir honoured), and otherwise its
  `command` + `args` run as a host process (host_process_runtime: the image is recorded, the host's
  filesystem and programs are used); either way in a process group of its own, with the
  environment resolved as a kubelet resolves it (pod_environment);
- volumes are materialized under the pod's directory (pod_volumes); a persistentVolumeClaim is the
  path of the hostPath or local PersistentVolume it is bound to (read with the node's credentials,
  as the Node authorizer lets a kubelet read its pods' claims and their volumes);
- the termination message is read from the host file that stands for `terminationMessagePath`
  (bind-mounted there in an image; named by `TERMINATION_MESSAGE_PATH` for a host process); with
  `terminationMessagePolicy: FallbackToLogsOnError` a failed container's log tail stands in;
- pod status (pod_status) goes Pending → Running → Succeeded/Failed with container states, exit
  codes, times, the image and its ID; `restartPolicy` OnFailure/Always restarts the container
  with back-off, counting `restartCount`;
- a deleted pod's process gets SIGTERM, then SIGKILL after its grace period, and the pod object
  is removed (the kubelet's part of graceful deletion); `activeDeadlineSeconds` is enforced;
- output goes to `<work-dir>/pods/<namespace>_<name>_<uid>/container.log`;
- a pod it cannot honour (pod_support) is marked Failed with reason `UnsupportedByLocalNode`.

`LOCALNODE_IMAGES=off` in the agent's environment runs every pod as a host process.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from localcluster.api_references import ApiReferences
from localcluster.host_process_runtime import HostProcessRuntime
from localcluster.image_runtime import (
    ImageRuntime,
    find_local_image,
    image_runtime_available,
    kill_stale_containers,
    remove_working_containers,
    working_container_prefix,
)
from localcluster.pod_environment import CreateContainerConfigError, NodeFacts, container_environment
from localcluster.pod_runtime import ContainerLaunch, CreateContainerError, PodRuntime, StartedContainer
from localcluster.pod_status import (
    HOST_IP,
    PodGone,
    now,
    parse_timestamp,
    patch_pod_status,
    pod_status_body,
    raw_json,
    timestamp,
)
from localcluster.pod_support import UNSUPPORTED_REASON, unsupported_features, unsupported_message
from localcluster.pod_volumes import materialize_volumes, read_only_volumes, volume_mounts

Json = dict[str, Any]
log = logging.getLogger("node-agent")

TERMINATION_MESSAGE_LIMIT = 4096  # bytes, as the kubelet
LEASE_DURATION_S = 40
LEASE_RENEW_S = 10
STATUS_HEARTBEAT_S = 60
CONFIG_RETRY_S = 2.0
RESTART_BACKOFF_MAX_S = 30.0
POLL_S = 0.2


class NodeReferences(ApiReferences):
    """What pod_volumes reads from the API: Secrets, ConfigMaps, tokens, and the
    PersistentVolumeClaims and PersistentVolumes of the pod's claims, as served (camelCase)."""

    def persistent_volume_claim(self, namespace: str, name: str) -> Json | None:
        def read(claim: str, in_namespace: str) -> Json:
            return raw_json(
                self.core.read_namespaced_persistent_volume_claim(claim, in_namespace, _preload_content=False)
            )

        found: Json | None = self._read(read, "persistentvolumeclaim", namespace, name)
        return found

    def persistent_volume(self, name: str) -> Json | None:
        def read(volume: str, _namespace: str) -> Json:
            return raw_json(self.core.read_persistent_volume(volume, _preload_content=False))

        found: Json | None = self._read(read, "persistentvolume", "", name)
        return found


class PodRun:
    """Runs one pod's container to its end; one thread per pod."""

    def __init__(self, agent: NodeAgent, pod: Json) -> None:
        self.agent = agent
        self.pod = pod
        metadata = pod["metadata"]
        self.uid: str = metadata["uid"]
        self.namespace: str = metadata["namespace"]
        self.name: str = metadata["name"]
        self.container: Json = pod["spec"]["containers"][0] if pod["spec"].get("containers") else {}
        self.directory = agent.work_dir / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        self.deleting = threading.Event()
        self.gone = threading.Event()  # the pod object no longer exists: nothing to report to
        self.grace_s: float = 30.0
        started = pod.get("status", {}).get("startTime")
        self.start_time = parse_timestamp(started) if started else now()
        self.runtime: PodRuntime | None = None
        self.started: StartedContainer | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"pod-{self.namespace}/{self.name}", daemon=True
        )

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.started.process if self.started is not None else None

    # -- what the watcher tells it --------------------------------------------------------------

    def update(self, pod: Json) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            grace = pod["metadata"].get("deletionGracePeriodSeconds")
            self.grace_s = float(grace if grace is not None else 30)
            self.deleting.set()

    def deleted(self) -> None:
        self.grace_s = 0
        self.gone.set()
        self.deleting.set()

    # -- the pod's life -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._lifecycle()
        except Exception:
            log.exception("pod %s/%s: the node agent failed running it", self.namespace, self.name)
            self.report(
                phase="Failed", reason="NodeAgentError", message="the local node agent failed; see its log"
            )
        finally:
            if self.runtime is not None:
                self.runtime.release()
            self.agent.finished(self.uid)

    def _lifecycle(self) -> None:
        self.runtime = runtime = self.agent.runtime_for(self.pod, self.container)
        problems = unsupported_features(self.pod, from_image=isinstance(runtime, ImageRuntime))
        if problems:
            message = unsupported_message(problems)
            log.info("pod %s/%s: %s", self.namespace, self.name, message)
            self.report(
                phase="Failed", reason=UNSUPPORTED_REASON, message=message, waiting=UNSUPPORTED_REASON
            )
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        restart_policy = self.pod["spec"].get("restartPolicy", "Always")
        restarts = 0
        backoff = 1.0
        while True:
            started_at = self._create_and_start()
            if started_at is None:  # deleted or past its deadline while it could not start
                self._finish_without_run()
                return
            self.report(phase="Running", running=timestamp(started_at), restarts=restarts)
            exit_code, why = self._wait()
            finished = now()
            runtime.release()
            message = self._termination_message(exit_code)
            terminated = {
                "exitCode": exit_code,
                "reason": why or ("Completed" if exit_code == 0 else "Error"),
                "startedAt": timestamp(started_at),
                "finishedAt": timestamp(finished),
                "containerID": self.started.container_id if self.started else "localnode://0",
            }
            if message:
                terminated["message"] = message
            if why == "DeadlineExceeded":
                self.report(
                    phase="Failed",
                    reason="DeadlineExceeded",
                    message="Pod was active on the node longer than the specified deadline",
                    terminated=terminated,
                    restarts=restarts,
                )
                return
            if self.deleting.is_set():
                self.report(
                    phase="Succeeded" if exit_code == 0 else "Failed",
                    terminated=terminated,
                    restarts=restarts,
                )
                self.remove_pod()
                return
            again = restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)
            if not again:
                self.report(
                    phase="Succeeded" if exit_code == 0 else "Failed",
                    terminated=terminated,
                    restarts=restarts,
                )
                return
            restarts += 1
            self.report(
                phase="Running", last_terminated=terminated, waiting="CrashLoopBackOff", restarts=restarts
            )
            if self.deleting.wait(backoff):
                self._finish_without_run()
                return
            backoff = min(backoff * 2, RESTART_BACKOFF_MAX_S)

    def _create_and_start(self) -> datetime.datetime | None:
        """Volumes, environment, then the container started by the runtime; waits (reporting
        CreateContainerConfigError or CreateContainerError, as the kubelet) while a referenced
        Secret or ConfigMap is missing or the container cannot be created. None when the pod was
        deleted or ran past its deadline meanwhile."""
        assert self.runtime is not None
        references = self.agent.references
        while True:
            try:
                volumes = materialize_volumes(self.pod, self.directory / "volumes", references)
                launch = ContainerLaunch(
                    pod=self.pod,
                    container=self.container,
                    environment=container_environment(self.pod, self.container, references, self.agent.facts),
                    mounts=volume_mounts(self.container, volumes, read_only_volumes(self.pod)),
                    directory=self.directory,
                    log_file=self.log_file,
                    termination_file=self.termination_file,
                )
                self.termination_file.unlink(missing_ok=True)
                started_at = now()
                self.started = self.runtime.start(launch)
                return started_at
            except (CreateContainerConfigError, CreateContainerError) as error:
                log.info("pod %s/%s waits: %s", self.namespace, self.name, error)
                self.report(phase="Pending", waiting=type(error).__name__, message=str(error))
                if self.deleting.wait(CONFIG_RETRY_S) or self._past_deadline():
                    return None

    @property
    def termination_file(self) -> Path:
        return self.directory / "termination-log"

    @property
    def log_file(self) -> Path:
        return self.directory / "container.log"

    def _wait(self) -> tuple[int, str | None]:
        """Until the process exits, the pod is deleted, or its deadline passes."""
        process = self.process
        assert process is not None
        why: str | None = None
        while process.poll() is None:
            if self.deleting.is_set():
                self._kill(self.grace_s)
                break
            if self._past_deadline():
                why = "DeadlineExceeded"
                self._kill(0)
                break
            time.sleep(POLL_S)
        code = process.wait()
        # A process killed by signal N reads as 128 + N, as container runtimes report it.
        return (128 - code if code < 0 else code), why

    def _past_deadline(self) -> bool:
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        if deadline is None:
            return False
        return (now() - self.start_time).total_seconds() >= float(deadline)

    def _kill(self, grace_s: float) -> None:
        """SIGTERM (SIGKILL without grace) to the container's process group, SIGKILL after the
        grace period. From an image, the group holds `unshare` (which ignores SIGTERM and ends as
        its child ends) and the container's PID 1, which, as in any container, gets SIGTERM only
        when it handles it; SIGKILL always reaches it."""
        process = self.process
        assert process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM if grace_s > 0 else signal.SIGKILL)
        try:
            process.wait(timeout=max(grace_s, 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """The agent is shutting down: stop the process now and free its container."""
        process = self.process
        if process is not None and process.poll() is None:
            self._kill(5)
        if self.runtime is not None:
            self.runtime.release()

    def _termination_message(self, exit_code: int) -> str:
        message = ""
        with contextlib.suppress(OSError):
            message = self.termination_file.read_bytes()[:TERMINATION_MESSAGE_LIMIT].decode(errors="replace")
        policy = self.container.get("terminationMessagePolicy", "File")
        if not message and exit_code != 0 and policy == "FallbackToLogsOnError":
            with contextlib.suppress(OSError):
                tail = self.log_file.read_bytes()[-TERMINATION_MESSAGE_LIMIT:]
                lines = tail.decode(errors="replace").splitlines()[-80:]
                message = "\n".join(lines)
        return message

    def _finish_without_run(self) -> None:
        if self._past_deadline() and not self.deleting.is_set():
            self.report(
                phase="Failed",
                reason="DeadlineExceeded",
                message="Pod was active on the node longer than the specified deadline",
            )
            return
        self.remove_pod()

    def remove_pod(self) -> None:
        """The kubelet's last step of graceful deletion: delete with grace period 0."""
        if self.gone.is_set():
            return
        with contextlib.suppress(ApiException):
            self.agent.core.delete_namespaced_pod(
                self.name,
                self.namespace,
                grace_period_seconds=0,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=self.uid)
                ),
            )

    # -- status ---------------------------------------------------------------------------------

    def report(
        self,
        phase: str,
        reason: str | None = None,
        message: str | None = None,
        waiting: str | None = None,
        running: str | None = None,
        terminated: Json | None = None,
        last_terminated: Json | None = None,
        restarts: int = 0,
    ) -> None:
        if self.gone.is_set():
            return
        body = pod_status_body(
            self.pod,
            self.container,
            phase,
            start_time=self.start_time,
            reason=reason,
            message=message,
            waiting=waiting,
            running=running,
            terminated=terminated,
            last_terminated=last_terminated,
            restarts=restarts,
            image=self.runtime.image if self.runtime is not None else None,
            image_id=self.runtime.image_id if self.runtime is not None else "",
        )
        try:
            self.pod = patch_pod_status(self.agent.core, self.pod, body)
        except PodGone:
            self.gone.set()


class NodeAgent:
    def __init__(self, api: client.ApiClient, node_name: str, work_dir: Path) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.leases = client.CoordinationV1Api(api)
        self.node_name = node_name
        self.work_dir = work_dir
        self.references = NodeReferences(self.core)
        self.facts = NodeFacts(host_ip=HOST_IP, allocatable=self._allocatable())
        server = urlparse(api.configuration.host)
        # Pods reach the API server as in-cluster clients reach the `kubernetes` service.
        host, port = server.hostname or HOST_IP, str(server.port or 443)
        self.host_environment = {
            **{k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
        }
        # What the kubelet adds for the `kubernetes` service to a container run from its image.
        self.service_environment = {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{host}:{port}",
        }
        # LOCALNODE_IMAGES=off: every pod as a host process, whatever local storage holds.
        self.runs_images = os.environ.get("LOCALNODE_IMAGES", "auto") != "off" and image_runtime_available()
        self.container_prefix = working_container_prefix(work_dir)
        self.runs: dict[str, PodRun] = {}
        self.done: set[str] = set()  # uids of pods this agent has run to their end
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    # -- the node -------------------------------------------------------------------------------

    @staticmethod
    def _allocatable() -> dict[str, str]:
        memory_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        return {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{memory_kib}Ki",
            "pods": "110",
            "ephemeral-storage": "50Gi",
        }

    def register(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                        platform.machine(), platform.machine()
                    ),
                    "vectors.aios.dev/local-node": "true",
                },
            },
        }
        try:
            self.core.create_node(client.V1Node.model_validate(body))
        except ApiException as error:
            if error.status != 409:
                raise
        self.heartbeat_status()
        log.info("node %s registered and Ready", self.node_name)

    def heartbeat_status(self) -> None:
        beat = timestamp()
        allocatable = self.facts.allocatable
        conditions = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "the local node has sufficient memory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "the local node has no disk pressure"),
            (
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "the local node has sufficient PID available",
            ),
            ("Ready", "True", "KubeletReady", "the local node agent is posting ready status"),
        ]
        status = {
            "conditions": [
                {
                    "type": kind,
                    "status": value,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": beat,
                    "lastTransitionTime": self._transition_time(kind, value, beat),
                }
                for kind, value, reason, message in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": HOST_IP},
                {"type": "Hostname", "address": self.node_name},
            ],
            "capacity": dict(allocatable),
            "allocatable": dict(allocatable),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "vector-operator local node (local images, else host processes)",
                "containerRuntimeVersion": "localnode://0.1.0",
                "kubeletVersion": os.environ.get("KUBERNETES_VERSION", "v0.0.0-localnode"),
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                    platform.machine(), platform.machine()
                ),
            },
        }
        self.core.patch_node_status(self.node_name, {"status": status})

    def _transition_time(self, kind: str, value: str, beat: str) -> str:
        try:
            node = self.core.read_node(self.node_name)
        except ApiException:
            return beat
        for condition in (node.status.conditions if node.status else None) or []:
            if condition.type == kind and condition.status == value and condition.last_transition_time:
                return timestamp(condition.last_transition_time.astimezone(datetime.UTC))
        return beat

    def renew_lease(self) -> None:
        namespace = "kube-node-lease"
        body = {
            "metadata": {"name": self.node_name, "namespace": namespace},
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": LEASE_DURATION_S,
                "renewTime": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        }
        try:
            self.leases.patch_namespaced_lease(self.node_name, namespace, body)
        except ApiException as error:
            if error.status != 404:
                raise
            self.leases.create_namespaced_lease(namespace, client.V1Lease.model_validate(body))

    def _heartbeats(self) -> None:
        last_status = time.monotonic()
        while not self.stopping.wait(LEASE_RENEW_S):
            try:
                self.renew_lease()
                if time.monotonic() - last_status >= STATUS_HEARTBEAT_S:
                    self.heartbeat_status()
                    last_status = time.monotonic()
            except (ApiException, OSError, urllib3.exceptions.HTTPError) as error:
                # a kubelet outlives its API server's restarts: the thread must never die
                log.warning("heartbeat failed (will retry): %s", error)

    # -- pods -----------------------------------------------------------------------------------

    def handle(self, event_type: str, pod: Json) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            run = self.runs.get(uid)
            if event_type == "DELETED":
                if run is not None:
                    run.deleted()
                self.done.discard(uid)
                return
            if run is not None:
                run.update(pod)
                return
            if uid in self.done:
                if pod["metadata"].get("deletionTimestamp"):
                    PodRun(self, pod).remove_pod()
                return
            phase = pod.get("status", {}).get("phase", "Pending")
            if phase in ("Succeeded", "Failed"):
                if pod["metadata"].get("deletionTimestamp"):
                    PodRun(self, pod).remove_pod()
                self.done.add(uid)
                return
            run = PodRun(self, pod)
            if phase == "Running":
                # Started by an earlier agent whose process is gone: the container was lost.
                self.done.add(uid)
                run.report(
                    phase="Failed",
                    reason="NodeAgentRestarted",
                    message="the local node agent restarted while this pod ran; its process was lost",
                    terminated={"exitCode": 137, "reason": "Error", "finishedAt": timestamp()},
                )
                return
            if pod["metadata"].get("deletionTimestamp"):
                run.remove_pod()
                return
            self.runs[uid] = run
            run.update(pod)
            run.thread.start()

    def finished(self, uid: str) -> None:
        with self.lock:
            self.runs.pop(uid, None)
            self.done.add(uid)

    def watch_pods(self) -> None:
        selector = f"spec.nodeName={self.node_name}"
        while not self.stopping.is_set():
            try:
                listed = raw_json(
                    self.core.list_pod_for_all_namespaces(field_selector=selector, _preload_content=False)
                )
                for pod in listed["items"]:
                    self.handle("ADDED", pod)
                version = listed["metadata"]["resourceVersion"]
                stream = watch.Watch()  # type: ignore[no-untyped-call]
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=60,
                    _request_timeout=90,
                ):
                    if self.stopping.is_set():
                        stream.stop()  # type: ignore[no-untyped-call]
                        break
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.handle(event["type"], event["raw_object"])
            except ApiException as error:
                if error.status != 410:
                    log.warning("watching pods failed (will retry): %s", error.reason)
                    self.stopping.wait(1)
            except Exception as error:  # the connection broke: list again and go on watching
                log.warning("watching pods failed (will retry): %s", error)
                self.stopping.wait(1)

    def runtime_for(self, pod: Json, container: Json) -> PodRuntime:
        """From the image when it is in local storage, else as a host process."""
        image = container.get("image", "")
        local = find_local_image(image) if self.runs_images else None
        if local is None:
            return HostProcessRuntime(image, self.host_environment)
        name = f"{self.container_prefix}{pod['metadata']['uid']}"
        return ImageRuntime(local, name, self.service_environment)

    def remove_stale_containers(self) -> None:
        """Working containers an earlier agent on this work dir left (it was killed without
        removing them), and their processes: none of them runs a pod of this agent."""
        if not self.runs_images:
            log.info(
                "pods run as host processes only (LOCALNODE_IMAGES=off, or running images needs root,"
                " buildah and unshare)"
            )
            return
        try:
            for group in kill_stale_containers(self.work_dir / "pods"):
                log.info("killed process group %d, a container an earlier agent left running", group)
            for name in remove_working_containers(self.container_prefix):
                log.info("removed working container %s left by an earlier agent", name)
        except (OSError, ValueError, subprocess.SubprocessError) as error:
            log.warning("could not remove what an earlier agent left: %s", error)

    def run(self) -> None:
        self.remove_stale_containers()
        self.register()
        self.renew_lease()
        threading.Thread(target=self._heartbeats, name="heartbeats", daemon=True).start()
        self.watch_pods()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            runs = list(self.runs.values())
        for run in runs:
            run.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.node_agent", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--work-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    api = config.new_client_from_config(config_file=str(args.kubeconfig))  # type: ignore[no-untyped-call]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    agent = NodeAgent(api, args.node_name, args.work_dir)

    def shut_down(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping the pods' processes and the agent", signum)
        agent.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
