"""How the node agent runs a pod's container: the runtime seam.

Two runtimes implement :class:`PodRuntime`:

- host_process_runtime: the container's `command` + `args` as a host process (the image is only
  recorded); the node's behaviour when the image is not in local storage;
- image_runtime: the image's filesystem from buildah's local containers-storage, entered with
  `unshare` and `chroot`, volumes bind-mounted at their mount paths.

Either way the container is one host process the agent started in a session of its own: the
agent waits for it, signals its process group, and reads the termination message from a host file.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

Json = dict[str, Any]

DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"


class CreateContainerError(Exception):
    """The container cannot be created (no command to run, the image vanished ...): the kubelet's
    `CreateContainerError`; the node tries again."""


@dataclass(frozen=True)
class VolumeMount:
    """A container's volumeMount resolved to the host directory (or file) that holds it."""

    mount_path: str
    source: Path
    read_only: bool = False


@dataclass(frozen=True)
class ContainerLaunch:
    """Everything a runtime needs to start the pod's container once."""

    pod: Json
    container: Json
    # The environment from the pod spec (env, envFrom), resolved as the kubelet does.
    environment: Mapping[str, str]
    mounts: Sequence[VolumeMount]
    directory: Path  # the pod's directory on the node
    log_file: Path  # stdout and stderr go here
    termination_file: Path  # the host file that stands for terminationMessagePath


@dataclass
class StartedContainer:
    """A running container: the host process the agent waits for and signals (a process group
    leader), and the container ID reported in the pod's status."""

    process: subprocess.Popen[bytes]
    container_id: str


class PodRuntime(Protocol):
    """Runs one pod's container; one instance per pod."""

    @property
    def image(self) -> str:
        """The image reported in the container's status."""

    @property
    def image_id(self) -> str:
        """The image's ID reported in the container's status ("" when no image is used)."""

    def start(self, launch: ContainerLaunch) -> StartedContainer:
        """Starts the container; raises CreateContainerError when it cannot."""

    def release(self) -> None:
        """The container ended (or will never start again): frees what `start` took. Idempotent."""
