"""The image runtime: a pod's container run from its image's filesystem in local storage.

When the container's image is in buildah's local containers-storage (and the agent runs as root
with `buildah` and `unshare` on the PATH), the node runs it as a container runtime would:

1. `buildah from --pull=never --name localnode-<work-dir hash>-<pod uid> <image id>` creates a
   working container (a fresh one for every start of the container, removed when it ends), and
   `buildah mount` mounts its root filesystem;
2. the user (image_config.process_user: runAsUser/runAsGroup, else the image's User resolved in
   its own /etc/passwd), command (command/args over Entrypoint/Cmd), environment (the image's Env,
   then the kubelet's: service variables and the container's env) and working directory are
   decided;
3. `unshare --mount --pid --fork --kill-child -- python -I -S container_init.py SPEC` mounts
   /proc, a minimal /dev, a fresh /tmp, the volumes at their mountPaths (readOnly honoured; the
   projected ServiceAccount token included), the pod's /etc/hosts, /etc/resolv.conf and
   /etc/hostname, and the termination-message file at terminationMessagePath; remounts the root
   read-only for readOnlyRootFilesystem; chroots, drops privileges and executes the command as
   PID 1 of the new PID namespace (container_init);
4. when the container ends, `buildah rm` unmounts and removes the working container.

Pods use the host's network, as everywhere on the local node. Working containers are named from
the agent's work directory and the pod's uid, so an agent that restarts removes what an earlier
one left (`remove_working_containers`) without touching another node's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcluster.container_init import resolve_in_root
from localcluster.image_config import (
    ImageConfig,
    process_command,
    process_environment,
    process_user,
    working_directory,
)
from localcluster.pod_runtime import (
    DEFAULT_TERMINATION_MESSAGE_PATH,
    ContainerLaunch,
    CreateContainerError,
    StartedContainer,
    VolumeMount,
)

Json = dict[str, Any]
log = logging.getLogger("node-agent")

CONTAINER_INIT = Path(__file__).with_name("container_init.py")
BUILDAH_TIMEOUT_S = 120
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEVICE_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
# The container's own /dev/shm and /tmp: tmpfs in its mount namespace, never the host's.
SHM, TMP = "/dev/shm", "/tmp"  # noqa: S108


def image_runtime_available() -> bool:
    """Whether this agent can run images: root, with buildah and unshare."""
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("buildah", "unshare", "mount"))


def buildah(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["buildah", *args], capture_output=True, text=True, check=False, timeout=BUILDAH_TIMEOUT_S
    )


@dataclass(frozen=True)
class LocalImage:
    """An image in local storage: its full name, its ID and its config."""

    name: str
    id: str
    config: ImageConfig


def find_local_image(image: str) -> LocalImage | None:
    """The image as local storage has it; None when it is not there (nothing is pulled)."""
    if not image:
        return None
    try:
        inspected = buildah("inspect", "--type", "image", image)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("cannot ask buildah for image %r: %s", image, error)
        return None
    if inspected.returncode != 0:
        return None
    details: Json = json.loads(inspected.stdout)
    return LocalImage(
        name=details.get("FromImage") or image,
        id=details["FromImageID"],
        config=ImageConfig.from_inspect(details),
    )


def working_container_prefix(work_dir: Path) -> str:
    """The names of this node's working containers start with it (one node per work dir)."""
    digest = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:8]
    return f"localnode-{digest}-"


def remove_working_containers(prefix: str) -> list[str]:
    """Removes the working containers whose name starts with `prefix`; returns their names."""
    listed = buildah("containers", "--json")
    if listed.returncode != 0:
        log.warning("cannot list buildah's containers: %s", listed.stderr.strip())
        return []
    containers = json.loads(listed.stdout or "null") or []  # "null" when there is none
    names = [c["containername"] for c in containers if c["containername"].startswith(prefix)]
    for name in names:
        removed = buildah("rm", name)
        if removed.returncode != 0:
            log.warning("cannot remove working container %s: %s", name, removed.stderr.strip())
    return names


def kill_stale_containers(pods_dir: Path) -> list[int]:
    """SIGKILLs the process groups of containers an earlier agent started from `pods_dir` (it
    was killed without stopping them); returns their process group ids."""
    marker = f"{pods_dir}/".encode()
    killed: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv[0] != b"unshare" or str(CONTAINER_INIT).encode() not in argv:
                continue
            if not any(arg.startswith(marker) for arg in argv):
                continue
            group = os.getpgid(int(entry.name))
            os.killpg(group, signal.SIGKILL)
            killed.append(group)
        except (OSError, IndexError):
            continue
    return killed


def sorted_mounts(mounts: list[VolumeMount]) -> list[VolumeMount]:
    """Parents before what is mounted inside them."""
    return sorted(mounts, key=lambda m: len([p for p in m.mount_path.split("/") if p]))


class ImageRuntime:
    def __init__(self, image: LocalImage, container_name: str, service_environment: dict[str, str]) -> None:
        self.local_image = image
        self.container_name = container_name
        self.service_environment = service_environment
        self._created = False

    @property
    def image(self) -> str:
        return self.local_image.name

    @property
    def image_id(self) -> str:
        return f"sha256:{self.local_image.id}"

    def start(self, launch: ContainerLaunch) -> StartedContainer:
        self._remove()  # a fresh filesystem for every start, as a runtime creates a new container
        created = buildah("from", "--pull=never", "--name", self.container_name, self.local_image.id)
        if created.returncode != 0:
            raise CreateContainerError(
                f"cannot create a working container from {self.image}: {created.stderr.strip()}"
            )
        self._created = True
        try:
            return self._start(launch)
        except BaseException:
            self.release()
            raise

    def _start(self, launch: ContainerLaunch) -> StartedContainer:
        mounted = buildah("mount", self.container_name)
        if mounted.returncode != 0:
            raise CreateContainerError(f"cannot mount working container: {mounted.stderr.strip()}")
        root = mounted.stdout.strip().splitlines()[-1]
        inspected = buildah("inspect", "--type", "container", self.container_name)
        container_id = json.loads(inspected.stdout)["ContainerID"] if inspected.returncode == 0 else ""

        spec = self.container_spec(launch, root)
        spec_file = launch.directory / "container-spec.json"
        spec_file.write_text(json.dumps(spec, indent=1))
        command = [
            "unshare", "--mount", "--pid", "--fork", "--kill-child", "--",
            sys.executable, "-I", "-S", str(CONTAINER_INIT), str(spec_file),
        ]  # fmt: skip
        with launch.log_file.open("ab") as output:
            process = subprocess.Popen(
                command,
                env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
                cwd=launch.directory,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        metadata = launch.pod["metadata"]
        log.info(
            "pod %s/%s: started pid %d in image %s (working container %s): %s",
            metadata["namespace"],
            metadata["name"],
            process.pid,
            self.image,
            self.container_name,
            spec["argv"][:1],
        )
        return StartedContainer(process=process, container_id=f"buildah://{container_id}")

    def container_spec(self, launch: ContainerLaunch, root: str) -> Json:
        """What container_init needs: the root, mounts in order, user, command, environment."""
        pod, container, config = launch.pod, launch.container, self.local_image.config
        user = process_user(pod, container, config, _read(root, "/etc/passwd"), _read(root, "/etc/group"))
        variables = {**self.service_environment, **launch.environment}
        argv = process_command(container, config, variables)
        environment = process_environment(config, pod["metadata"]["name"], variables, user.home)

        files = self._pod_files(launch)
        launch.termination_file.write_bytes(b"")
        launch.termination_file.chmod(0o666)
        volume_paths = {m.mount_path.rstrip("/") or "/" for m in launch.mounts}
        mounts: list[Json] = [
            {"type": "proc", "target": "/proc", "options": "nosuid,nodev,noexec"},
            {"type": "sysfs", "target": "/sys", "options": "ro,nosuid,nodev,noexec", "optional": True},
            {"type": "tmpfs", "target": "/dev", "options": "mode=755,nosuid"},
        ]
        mounts += [{"type": "bind", "source": f"/dev/{d}", "target": f"/dev/{d}"} for d in DEVICES]
        mounts.append({"type": "tmpfs", "target": SHM, "options": "mode=1777,nosuid,nodev"})
        if TMP not in volume_paths:
            mounts.append({"type": "tmpfs", "target": TMP, "options": "mode=1777,nosuid,nodev"})
        mounts += [
            {"type": "bind", "source": str(m.source), "target": m.mount_path, "readOnly": m.read_only}
            for m in sorted_mounts(list(launch.mounts))
        ]
        mounts += [
            {"type": "bind", "source": str(source), "target": target} for target, source in files.items()
        ]
        termination_path = container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
        mounts.append({"type": "bind", "source": str(launch.termination_file), "target": termination_path})
        security = container.get("securityContext") or {}
        return {
            "root": root,
            "mounts": mounts,
            "links": [{"path": f"/dev/{name}", "target": target} for name, target in DEVICE_LINKS.items()],
            "readOnlyRoot": bool(security.get("readOnlyRootFilesystem")),
            "workingDir": working_directory(container, config),
            "uid": user.uid,
            "gid": user.gid,
            "groups": list(user.groups),
            "argv": argv,
            "env": environment,
        }

    @staticmethod
    def _pod_files(launch: ContainerLaunch) -> dict[str, Path]:
        """The pod's own /etc/hosts, /etc/resolv.conf and /etc/hostname (host network), as the
        kubelet writes them for a pod."""
        name = launch.pod["metadata"]["name"]
        files = {
            "/etc/hostname": launch.directory / "hostname",
            "/etc/hosts": launch.directory / "hosts",
            "/etc/resolv.conf": launch.directory / "resolv.conf",
        }
        files["/etc/hostname"].write_text(f"{name}\n")
        hosts = (
            _host_text("/etc/hosts") or "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        files["/etc/hosts"].write_text(f"{hosts.rstrip()}\n127.0.0.1\t{name}\n")
        files["/etc/resolv.conf"].write_text(_host_text("/etc/resolv.conf"))
        for path in files.values():
            path.chmod(0o644)
        return files

    def release(self) -> None:
        if self._created:
            self._remove()
            self._created = False

    def _remove(self) -> None:
        removed = buildah("rm", self.container_name)
        if removed.returncode == 0:
            log.info("removed working container %s", self.container_name)


def _read(root: str, path: str) -> str:
    try:
        return Path(resolve_in_root(root, path)).read_text(errors="replace")
    except OSError:
        return ""


def _host_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
