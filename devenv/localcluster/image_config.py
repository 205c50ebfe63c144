"""What a container runtime decides from an image's config and the container's spec.

Pure functions (unit tested without images), following what the kubelet and a CRI runtime
(containerd, runc) do together:

- command: the container's `command` replaces the image's Entrypoint (and then its Cmd is not
  used); `args` replaces the image's Cmd; `$(VAR)` in command and args expands against the
  kubelet's variables (the container's env and the service variables), never the image's.
- environment: a default PATH, then the image's Env, then HOSTNAME, then the kubelet's variables
  (service variables, then the container's env); a later name overrides an earlier one; HOME from
  the user's passwd entry (else "/") unless set.
- user: securityContext runAsUser / runAsGroup (the container's, else the pod's) win over the
  image's `User` (`uid`, `name`, `uid:gid`, `name:group`, names resolved in the image's own
  /etc/passwd and /etc/group); without a group, the passwd entry's primary group (0 when the uid
  has none); supplementary groups: the user's memberships in /etc/group, the pod's
  `supplementalGroups` and `fsGroup`. `runAsNonRoot` refuses uid 0.
- working directory: the container's `workingDir`, else the image's WorkingDir, else "/".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from localcluster.pod_environment import CreateContainerConfigError, expand
from localcluster.pod_runtime import CreateContainerError

Json = dict[str, Any]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config a runtime uses."""

    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""

    @classmethod
    def from_inspect(cls, inspected: Json) -> ImageConfig:
        """From `buildah inspect --type image` output (its OCI config, else its Docker one)."""
        config = (inspected.get("OCIv1") or {}).get("config") or {}
        if not config:
            config = (inspected.get("Docker") or {}).get("config") or {}
        return cls(
            env=tuple(config.get("Env") or ()),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            working_dir=config.get("WorkingDir") or "",
            user=config.get("User") or "",
        )


@dataclass(frozen=True)
class ProcessUser:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    home: str = "/"


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...] = field(default_factory=tuple)


def process_command(container: Json, image: ImageConfig, variables: Mapping[str, str]) -> list[str]:
    """The argv a runtime executes for this container."""
    command = [expand(part, variables) for part in container.get("command") or []]
    args = [expand(part, variables) for part in container.get("args") or []]
    argv = command + args if command else list(image.entrypoint) + (args or list(image.cmd))
    if not argv:
        raise CreateContainerError(
            f"no command specified: container {container.get('name')!r} sets no command or args and"
            f" image {container.get('image')!r} has no Entrypoint or Cmd"
        )
    return argv


def process_environment(
    image: ImageConfig, hostname: str, kubelet_variables: Mapping[str, str], home: str
) -> dict[str, str]:
    """The process's environment: runtime defaults, the image's Env, then the kubelet's."""
    environment = {"PATH": DEFAULT_PATH}
    for entry in image.env:
        name, _, value = entry.partition("=")
        environment[name] = value
    environment["HOSTNAME"] = hostname
    environment.update(kubelet_variables)
    environment.setdefault("HOME", home)
    return environment


def working_directory(container: Json, image: ImageConfig) -> str:
    return container.get("workingDir") or image.working_dir or "/"


def parse_passwd(text: str) -> list[PasswdEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or line.startswith("#"):
            continue
        try:
            entries.append(PasswdEntry(fields[0], int(fields[2]), int(fields[3]), fields[5] or "/"))
        except ValueError:
            continue
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        try:
            members = tuple(name for name in fields[3].split(",") if name)
            entries.append(GroupEntry(fields[0], int(fields[2]), members))
        except ValueError:
            continue
    return entries


def _security_field(pod: Json, container: Json, name: str) -> Any:
    """A securityContext field: the container's, else the pod's."""
    own = (container.get("securityContext") or {}).get(name)
    if own is not None:
        return own
    return (pod.get("spec", {}).get("securityContext") or {}).get(name)


def process_user(pod: Json, container: Json, image: ImageConfig, passwd: str, group: str) -> ProcessUser:
    """The uid, gid, supplementary groups and home directory the container's process runs with."""
    users = parse_passwd(passwd)
    groups = parse_group(group)
    run_as_user = _security_field(pod, container, "runAsUser")
    run_as_group = _security_field(pod, container, "runAsGroup")
    entry: PasswdEntry | None
    gid: int | None = None
    if run_as_user is not None:
        uid = int(run_as_user)
        entry = next((user for user in users if user.uid == uid), None)
    else:
        user_part, _, group_part = image.user.partition(":")
        entry, uid = _image_user(user_part, users, image.user)
        if group_part:
            gid = _image_group(group_part, groups, image.user)
    if run_as_group is not None:
        gid = int(run_as_group)
    if gid is None:
        gid = entry.gid if entry is not None else 0
    if uid == 0 and _security_field(pod, container, "runAsNonRoot"):
        raise CreateContainerConfigError(
            "container has runAsNonRoot and image will run as root"
            f" (pod: {pod['metadata'].get('name')!r}, container: {container.get('name')!r})"
        )
    extra: list[int] = []
    if entry is not None:
        extra += [g.gid for g in groups if entry.name in g.members]
    pod_security = pod.get("spec", {}).get("securityContext") or {}
    extra += [int(g) for g in pod_security.get("supplementalGroups") or []]
    if pod_security.get("fsGroup") is not None:
        extra.append(int(pod_security["fsGroup"]))
    supplementary = tuple(dict.fromkeys(g for g in [gid, *extra]))
    return ProcessUser(uid, gid, supplementary, entry.home if entry is not None else "/")


def _image_user(text: str, users: Sequence[PasswdEntry], spec: str) -> tuple[PasswdEntry | None, int]:
    if not text:
        return next((user for user in users if user.uid == 0), None), 0
    if text.isdigit():
        uid = int(text)
        return next((user for user in users if user.uid == uid), None), uid
    entry = next((user for user in users if user.name == text), None)
    if entry is None:
        raise CreateContainerError(
            f"unable to find user {text} (image User {spec!r}): no matching entries in passwd file"
        )
    return entry, entry.uid


def _image_group(text: str, groups: Sequence[GroupEntry], spec: str) -> int:
    if text.isdigit():
        return int(text)
    entry = next((group for group in groups if group.name == text), None)
    if entry is None:
        raise CreateContainerError(
            f"unable to find group {text} (image User {spec!r}): no matching entries in group file"
        )
    return entry.gid
