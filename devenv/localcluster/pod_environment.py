"""A container's environment, command and arguments, resolved as the kubelet resolves them.

Pure functions over the pod as the API server serves it (a camelCase dict), so they are unit
tested without a cluster. What the kubelet reads from the API (Secrets, ConfigMaps) comes through
a :class:`ReferenceSource`.

The rules followed (kubelet `makeEnvironmentVariables` and `expansion.Expand`):

- `envFrom` first, in order, then `env` in order; a later name overrides an earlier one.
- `env[].value` may reference variables defined *before* it as `$(NAME)`; `$$(NAME)` is an escaped
  literal `$(NAME)`; a reference to an unknown name stays as written.
- `command` and `args` are expanded against the container's final environment.
- `valueFrom`: `secretKeyRef`, `configMapKeyRef` (with `optional`), `fieldRef` (the downward API
  fields the kubelet supports for env), `resourceFieldRef` (limits/requests, with `divisor`).
- A missing, non-optional Secret/ConfigMap or key is the kubelet's `CreateContainerConfigError`:
  the container waits, and the kubelet tries again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

Json = dict[str, Any]


class ReferenceSource(Protocol):
    """What the node reads from the API to build a container's environment."""

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """The Secret's data, decoded; None when it does not exist."""

    def config_map(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """The ConfigMap's data; None when it does not exist."""


class CreateContainerConfigError(Exception):
    """A referenced Secret, ConfigMap or key is missing: the container cannot start yet."""


_REFERENCE = re.compile(r"\$(\$|\(([^)]*)\))")


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known names are replaced, `$$` escapes, the rest stays."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name = match.group(2)
        return variables.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


@dataclass(frozen=True)
class NodeFacts:
    """What the node knows about itself that a container's environment may refer to."""

    host_ip: str = "127.0.0.1"
    # What the node advertises as allocatable: an unset limit resolves to it.
    allocatable: Mapping[str, str] = field(default_factory=dict)


def container_environment(
    pod: Json, container: Json, source: ReferenceSource, node: NodeFacts
) -> dict[str, str]:
    """The environment the container's process gets from its pod spec (not the host's)."""
    namespace = pod["metadata"]["namespace"]
    environment: dict[str, str] = {}

    for env_from in container.get("envFrom") or []:
        prefix = env_from.get("prefix", "")
        if "configMapRef" in env_from:
            ref, kind = env_from["configMapRef"], "configmap"
            data = source.config_map(namespace, ref["name"])
        elif "secretRef" in env_from:
            ref, kind = env_from["secretRef"], "secret"
            data = source.secret(namespace, ref["name"])
        else:
            continue
        if data is None:
            if ref.get("optional"):
                continue
            raise CreateContainerConfigError(f'{kind} "{ref["name"]}" not found')
        for key, value in data.items():
            environment[prefix + key] = value

    for variable in container.get("env") or []:
        name = variable["name"]
        if "valueFrom" in variable:
            resolved = _value_from(variable["valueFrom"], pod, container, source, node)
            if resolved is None:  # an optional reference that is missing: the variable is not set
                continue
            environment[name] = resolved
        else:
            environment[name] = expand(variable.get("value", ""), environment)
    return environment


def container_command(container: Json, environment: Mapping[str, str]) -> list[str]:
    """`command` + `args`, each expanded against the container's environment."""
    parts = (container.get("command") or []) + (container.get("args") or [])
    return [expand(part, environment) for part in parts]


def _value_from(
    value_from: Json, pod: Json, container: Json, source: ReferenceSource, node: NodeFacts
) -> str | None:
    namespace = pod["metadata"]["namespace"]
    if "secretKeyRef" in value_from:
        ref = value_from["secretKeyRef"]
        return _key_ref(ref, "secret", source.secret(namespace, ref["name"]))
    if "configMapKeyRef" in value_from:
        ref = value_from["configMapKeyRef"]
        return _key_ref(ref, "configmap", source.config_map(namespace, ref["name"]))
    if "fieldRef" in value_from:
        return field_value(pod, value_from["fieldRef"]["fieldPath"], node.host_ip)
    if "resourceFieldRef" in value_from:
        return resource_value(container, value_from["resourceFieldRef"], node.allocatable)
    raise CreateContainerConfigError(f"unsupported valueFrom: {sorted(value_from)}")


def _key_ref(ref: Json, kind: str, data: Mapping[str, str] | None) -> str | None:
    optional = bool(ref.get("optional"))
    if data is None:
        if optional:
            return None
        raise CreateContainerConfigError(f'{kind} "{ref["name"]}" not found')
    if ref["key"] not in data:
        if optional:
            return None
        raise CreateContainerConfigError(
            f"couldn't find key {ref['key']} in {kind.capitalize()} {ref['name']}"
        )
    return data[ref["key"]]


_SUBSCRIPTED = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Json, field_path: str, host_ip: str = "127.0.0.1") -> str:
    """The downward API fields a kubelet resolves for environment variables."""
    metadata, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        # The local node runs every pod in the host's network, as `hostNetwork: true` would.
        "status.podIP": status.get("podIP") or host_ip,
        "status.podIPs": status.get("podIP") or host_ip,
    }
    if field_path in simple:
        return str(simple[field_path])
    subscripted = _SUBSCRIPTED.match(field_path)
    if subscripted:
        return str((metadata.get(subscripted.group(1)) or {}).get(subscripted.group(2), ""))
    if field_path in ("metadata.labels", "metadata.annotations"):
        items = metadata.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{key}="{value}"' for key, value in sorted(items.items()))
    raise CreateContainerConfigError(f"unsupported fieldRef fieldPath {field_path!r}")


_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([numkMGTPE]i?|)$")


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes resource quantity ("500m", "4Gi", "2") as a number."""
    match = _QUANTITY.match(str(text).strip())
    if not match or (match.group(2) == "ki"):
        raise ValueError(f"not a resource quantity: {text!r}")
    return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]


def resource_value(container: Json, ref: Json, allocatable: Mapping[str, str]) -> str:
    """`resourceFieldRef`: a limit or request divided by `divisor`, rounded up as the kubelet does.
    An unset CPU or memory limit is the node's allocatable amount."""
    resource = ref["resource"]
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "limits":
        raw = allocatable.get(name)
    if raw is None:
        raw = "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(raw) / divisor))
