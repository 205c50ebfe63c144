"""Which pods the local node can honour, and why not the others.

The local node runs a pod's one container from its image when the image is in local storage, and
as a host process otherwise. What it cannot do (several containers sharing a sandbox, host
devices, volume types other than SUPPORTED_VOLUMES, and an image's own entrypoint when the image
is not in local storage) cannot be honoured: such a pod is marked Failed with a message that names
the missing feature, instead of appearing to run.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

# Volume sources the node materializes (pod_volumes): directories under the pod's directory, and
# claims, whose PersistentVolume (hostPath or local, else the container waits with
# CreateContainerConfigError) is a path on the node.
SUPPORTED_VOLUMES = ("emptyDir", "secret", "configMap", "projected", "downwardAPI", "persistentVolumeClaim")
UNSUPPORTED_REASON = "UnsupportedByLocalNode"


def unsupported_features(pod: Json, from_image: bool = False) -> list[str]:
    """Human descriptions of what this pod asks for that the local node cannot do; empty when
    it can run the pod. `from_image`: the node runs the container from its image, whose
    Entrypoint and Cmd may stand for a missing command."""
    spec = pod.get("spec", {})
    problems: list[str] = []
    containers = spec.get("containers") or []
    if len(containers) != 1:
        problems.append(f"{len(containers)} containers (the local node runs exactly one container per pod)")
    if spec.get("initContainers"):
        problems.append("initContainers")
    if spec.get("ephemeralContainers"):
        problems.append("ephemeralContainers")
    for container in containers:
        if not container.get("command") and not from_image:
            problems.append(
                f"container {container.get('name')!r} has no `command`: the local node cannot run an"
                f" image's entrypoint ({container.get('image')!r}); set command (and args)"
            )
        for device in container.get("volumeDevices") or []:
            problems.append(f"volumeDevices ({device.get('name')!r})")
    for volume in spec.get("volumes") or []:
        kinds = [key for key in volume if key != "name"]
        if not any(kind in SUPPORTED_VOLUMES for kind in kinds):
            problems.append(
                f"volume {volume.get('name')!r} of type {'/'.join(kinds) or 'unknown'}"
                f" (supported: {', '.join(SUPPORTED_VOLUMES)})"
            )
    return problems


def unsupported_message(problems: list[str]) -> str:
    return "the local node cannot run this pod: " + "; ".join(problems)
