"""The host-process runtime: a pod's container `command` + `args` run as a host process.

The image is only recorded; the host's filesystem and programs are used. The environment is the
host's, then `HOSTNAME`, then the container's own (pod_environment); the process also gets
`TERMINATION_MESSAGE_PATH` (where to write its termination message) and
`LOCALNODE_VOLUME_MOUNTS`, a JSON map from each mount path to the host directory that holds it.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path

from localcluster.pod_environment import container_command
from localcluster.pod_runtime import ContainerLaunch, StartedContainer

log = logging.getLogger("node-agent")


class HostProcessRuntime:
    def __init__(self, image: str, host_environment: Mapping[str, str]) -> None:
        self._image = image
        self.host_environment = host_environment

    @property
    def image(self) -> str:
        return self._image

    @property
    def image_id(self) -> str:
        return ""

    def start(self, launch: ContainerLaunch) -> StartedContainer:
        metadata = launch.pod["metadata"]
        mounts = {mount.mount_path: str(mount.source) for mount in launch.mounts}
        environment = {
            **self.host_environment,
            "HOSTNAME": metadata["name"],
            **launch.environment,
            "TERMINATION_MESSAGE_PATH": str(launch.termination_file),
            "LOCALNODE_VOLUME_MOUNTS": json.dumps(mounts),
        }
        command = container_command(launch.container, environment)
        working_dir = launch.container.get("workingDir")
        cwd = working_dir if working_dir and Path(working_dir).is_dir() else str(launch.directory)
        with launch.log_file.open("ab") as output:
            process = subprocess.Popen(
                command,
                env=environment,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info(
            "pod %s/%s: started pid %d: %s", metadata["namespace"], metadata["name"], process.pid, command[:1]
        )
        return StartedContainer(process=process, container_id=f"localnode://{process.pid}")

    def release(self) -> None:
        pass
