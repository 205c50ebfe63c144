"""A pod's volumes, materialized as directories on the node.

emptyDir is an empty directory; secret, configMap, downwardAPI and projected volumes are written
as files the way the kubelet writes them (`items` with `path` and `mode`, `defaultMode`,
`optional`); an emptyDir is writable by every user (0777), as the kubelet makes it. These are
directories under the pod's directory, made afresh for every start. A persistentVolumeClaim is
the directory (or file) of the PersistentVolume the claim is bound to, which must be a `hostPath`
or `local` one: that path itself, on the node, outside the pod's directory, never made afresh nor
removed, so what the pod writes there outlives it. A container run from its image gets each
directory bind-mounted at its `mountPath` (image_runtime), read-only when the volumeMount or the
claim says `readOnly`; a host process is handed a map from each mount path to the directory that
holds it (host_process_runtime).
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

from localcluster.pod_environment import CreateContainerConfigError, ReferenceSource, field_value
from localcluster.pod_runtime import VolumeMount

Json = dict[str, Any]


class VolumeSource(ReferenceSource, Protocol):
    def service_account_token(self, pod: Json, audience: str | None, expiration_seconds: int) -> str:
        """A bound service-account token for the pod (TokenRequest)."""

    def persistent_volume_claim(self, namespace: str, name: str) -> Json | None:
        """The PersistentVolumeClaim as served; None when it does not exist."""

    def persistent_volume(self, name: str) -> Json | None:
        """The PersistentVolume as served; None when it does not exist."""


def materialize_volumes(pod: Json, root: Path, source: VolumeSource) -> dict[str, Path]:
    """Writes every volume of the pod under `root` (a persistentVolumeClaim is its
    PersistentVolume's own path, elsewhere); returns volume name → directory."""
    namespace = pod["metadata"]["namespace"]
    directories: dict[str, Path] = {}
    for volume in pod.get("spec", {}).get("volumes") or []:
        if "persistentVolumeClaim" in volume:
            # Not under `root`: the volume's data lives on, so it is never emptied or removed.
            directories[volume["name"]] = claimed_path(volume, namespace, source)
            continue
        directory = root / volume["name"]
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        if "emptyDir" in volume:
            directory.chmod(0o777)  # as the kubelet makes it: writable whatever user the pod runs as
        elif "secret" in volume:
            ref = volume["secret"]
            _write_keyed(
                directory,
                "secret",
                ref.get("secretName", ""),
                source.secret(namespace, ref.get("secretName", "")),
                ref,
            )
        elif "configMap" in volume:
            ref = volume["configMap"]
            _write_keyed(directory, "configmap", ref["name"], source.config_map(namespace, ref["name"]), ref)
        elif "downwardAPI" in volume:
            _write_downward(directory, pod, volume["downwardAPI"].get("items") or [], volume["downwardAPI"])
        elif "projected" in volume:
            projected = volume["projected"]
            for item in projected.get("sources") or []:
                if "secret" in item:
                    ref = item["secret"]
                    _write_keyed(directory, "secret", ref["name"], source.secret(namespace, ref["name"]), ref)
                elif "configMap" in item:
                    ref = item["configMap"]
                    _write_keyed(
                        directory, "configmap", ref["name"], source.config_map(namespace, ref["name"]), ref
                    )
                elif "downwardAPI" in item:
                    _write_downward(directory, pod, item["downwardAPI"].get("items") or [], projected)
                elif "serviceAccountToken" in item:
                    token = item["serviceAccountToken"]
                    value = source.service_account_token(
                        pod, token.get("audience"), int(token.get("expirationSeconds") or 3600)
                    )
                    _write(directory / token["path"], value, projected.get("defaultMode", 0o644))
        directories[volume["name"]] = directory
    return directories


def claimed_path(volume: Json, namespace: str, source: VolumeSource) -> Path:
    """The host path of the PersistentVolume that the volume's claim is bound to, as the kubelet
    finds it: the claim must exist and be Bound, its PersistentVolume must name the claim back
    and be a `hostPath` (its `type` checked, `DirectoryOrCreate`/`FileOrCreate` created) or a
    `local` volume (whose path must exist)."""
    name = volume["name"]
    claim_name = volume["persistentVolumeClaim"].get("claimName", "")
    claim = source.persistent_volume_claim(namespace, claim_name)
    if claim is None:
        raise CreateContainerConfigError(f'volume "{name}": persistentvolumeclaim "{claim_name}" not found')
    phase = claim.get("status", {}).get("phase", "Pending")
    volume_name = claim.get("spec", {}).get("volumeName")
    if phase != "Bound" or not volume_name:
        raise CreateContainerConfigError(
            f'volume "{name}": persistentvolumeclaim "{claim_name}" is not bound (phase {phase})'
        )
    persistent_volume = source.persistent_volume(volume_name)
    if persistent_volume is None:
        raise CreateContainerConfigError(f'volume "{name}": PersistentVolume "{volume_name}" not found')
    spec = persistent_volume.get("spec", {})
    claim_ref = spec.get("claimRef") or {}
    if claim_ref.get("uid") != claim["metadata"].get("uid"):
        raise CreateContainerConfigError(
            f'volume "{name}": PersistentVolume "{volume_name}" is not bound to persistentvolumeclaim'
            f' "{claim_name}"'
        )
    if "hostPath" in spec:
        return _host_path(name, spec["hostPath"]["path"], spec["hostPath"].get("type") or "")
    if "local" in spec:
        path = Path(spec["local"]["path"])
        if not path.exists():
            raise CreateContainerConfigError(f'volume "{name}": path "{path}" does not exist')
        return path
    raise CreateContainerConfigError(
        f'volume "{name}": PersistentVolume "{volume_name}" has no hostPath or local source'
        " (the local node mounts only those)"
    )


def _host_path(volume_name: str, host_path: str, kind: str) -> Path:
    """A hostPath PersistentVolume's path after the kubelet's `type` check."""
    path = Path(host_path)
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(mode=0o755, parents=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o644)
    problem = None
    if not path.exists():
        problem = f"{path} does not exist"
    elif kind in ("Directory", "DirectoryOrCreate") and not path.is_dir():
        problem = f"{path} is not a directory"
    elif kind in ("File", "FileOrCreate") and not path.is_file():
        problem = f"{path} is not a file"
    if problem is not None:
        raise CreateContainerConfigError(f'volume "{volume_name}": hostPath type check failed: {problem}')
    return path


def read_only_volumes(pod: Json) -> frozenset[str]:
    """The volumes every mount of which is read-only: claims with `readOnly: true`."""
    return frozenset(
        volume["name"]
        for volume in pod.get("spec", {}).get("volumes") or []
        if (volume.get("persistentVolumeClaim") or {}).get("readOnly")
    )


def container_mounts(container: Json, volumes: Mapping[str, Path]) -> dict[str, str]:
    """mountPath → the host directory (or file, with subPath) that stands for it."""
    return {mount.mount_path: str(mount.source) for mount in volume_mounts(container, volumes)}


def volume_mounts(
    container: Json, volumes: Mapping[str, Path], read_only: Collection[str] = ()
) -> list[VolumeMount]:
    """The container's volumeMounts, in order, each with the host directory (or file, with
    subPath) that stands for it and whether it is read-only (the mount's `readOnly`, or its
    volume is among `read_only`, see :func:`read_only_volumes`)."""
    mounts: list[VolumeMount] = []
    for mount in container.get("volumeMounts") or []:
        directory = volumes.get(mount["name"])
        if directory is None:
            raise CreateContainerConfigError(f"volumeMount {mount['name']!r} names no volume of the pod")
        path = directory / mount["subPath"] if mount.get("subPath") else directory
        read_only_mount = bool(mount.get("readOnly")) or mount["name"] in read_only
        mounts.append(VolumeMount(mount["mountPath"], path, read_only_mount))
    return mounts


def _write_keyed(directory: Path, kind: str, name: str, data: Mapping[str, str] | None, ref: Json) -> None:
    if data is None:
        if ref.get("optional"):
            return
        raise CreateContainerConfigError(f'MountVolume.SetUp failed: {kind} "{name}" not found')
    mode = ref.get("defaultMode", 0o644)
    items = ref.get("items")
    if not items:
        for key, value in data.items():
            _write(directory / key, value, mode)
        return
    for item in items:
        if item["key"] not in data:
            if ref.get("optional"):
                continue
            raise CreateContainerConfigError(
                f"MountVolume.SetUp failed: couldn't find key {item['key']} in {kind} {name}"
            )
        _write(directory / item["path"], data[item["key"]], item.get("mode", mode))


def _write_downward(directory: Path, pod: Json, items: list[Json], ref: Json) -> None:
    for item in items:
        if "fieldRef" not in item:
            raise CreateContainerConfigError(
                f"downwardAPI item {item.get('path')!r}: only fieldRef is supported"
            )
        value = field_value(pod, item["fieldRef"]["fieldPath"])
        mode: int = item.get("mode") or ref.get("defaultMode") or 0o644
        _write(directory / item["path"], value, mode)


def _write(path: Path, value: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    path.chmod(mode)


def decode_secret_data(data: Mapping[str, str] | None) -> dict[str, str]:
    """A Secret's `data` (base64) as text."""
    return {key: base64.b64decode(value).decode(errors="replace") for key, value in (data or {}).items()}
