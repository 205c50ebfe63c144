"""The node agent resolves a container's environment, command and volumes as a kubelet does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from localcluster.pod_environment import (
    CreateContainerConfigError,
    NodeFacts,
    container_command,
    container_environment,
    expand,
    parse_quantity,
)
from localcluster.pod_support import unsupported_features
from localcluster.pod_volumes import container_mounts, materialize_volumes, read_only_volumes, volume_mounts


class Store:
    """Secrets, ConfigMaps and PersistentVolumeClaims of one namespace, and PersistentVolumes, as
    the API would serve them."""

    def __init__(
        self,
        secrets: dict[str, dict[str, str]] | None = None,
        config_maps: dict[str, dict[str, str]] | None = None,
        claims: dict[str, dict[str, Any]] | None = None,
        persistent_volumes: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.secrets = secrets or {}
        self.config_maps = config_maps or {}
        self.claims = claims or {}
        self.persistent_volumes = persistent_volumes or {}
        self.tokens: list[tuple[str | None, int]] = []

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        return self.secrets.get(name)

    def config_map(self, namespace: str, name: str) -> Mapping[str, str] | None:
        return self.config_maps.get(name)

    def service_account_token(
        self, pod: dict[str, Any], audience: str | None, expiration_seconds: int
    ) -> str:
        self.tokens.append((audience, expiration_seconds))
        return "token-for-" + pod["metadata"]["name"]

    def persistent_volume_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.claims.get(name)

    def persistent_volume(self, name: str) -> dict[str, Any] | None:
        return self.persistent_volumes.get(name)


NODE = NodeFacts(host_ip="127.0.0.1", allocatable={"cpu": "2", "memory": "24Gi"})


def pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "worker-0",
            "namespace": "search",
            "uid": "u-1",
            "labels": {"app": "embed", "batch": "7"},
            "annotations": {"note": "hi"},
        },
        "spec": {
            "nodeName": "local-node",
            "serviceAccountName": "embedder",
            "containers": [container],
            **spec,
        },
        "status": {},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-2"),
        ("$$(A)", "$(A)"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$A $(A", "$A $(A"),
        ("$$$(A)", "$1"),
    ],
)
def test_expansion_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expected


def test_env_from_first_then_env_overrides_and_refers_back() -> None:
    container = {
        "name": "main",
        "command": ["python", "-c", "$(GREETING)"],
        "args": ["--batch=$(BATCH)", "$$(BATCH)"],
        "envFrom": [
            {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
            {"secretRef": {"name": "creds"}},
        ],
        "env": [
            {"name": "TOKEN", "value": "overridden"},
            {"name": "BATCH", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch']"}}},
            {"name": "GREETING", "value": "print('$(TOKEN) $(CFG_MODE) $(LATER)')"},
            {"name": "LATER", "value": "x"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
            {"name": "URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
            {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}}},
        ],
    }
    store = Store(
        secrets={"creds": {"TOKEN": "s3cret", "USER": "bob"}, "db": {"url": "sqlite:///x.db"}},
        config_maps={"settings": {"MODE": "fast"}},
    )
    environment = container_environment(pod(container), container, store, NODE)
    assert environment["CFG_MODE"] == "fast"
    assert environment["USER"] == "bob"
    assert environment["TOKEN"] == "overridden"
    assert environment["GREETING"] == "print('overridden fast $(LATER)')"  # LATER comes after it
    assert environment["POD"] == "worker-0"
    assert environment["NS"] == "search"
    assert environment["SA"] == "embedder"
    assert environment["NOTE"] == "hi"
    assert environment["URL"] == "sqlite:///x.db"
    assert environment["MODE"] == "fast"
    assert "GONE" not in environment
    assert container_command(container, environment) == [
        "python",
        "-c",
        "print('overridden fast $(LATER)')",
        "--batch=7",
        "$(BATCH)",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}],
            'secret "db" not found',
        ),
        (
            [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}],
            "couldn't find key nope in Configmap cfg",
        ),
    ],
)
def test_a_missing_reference_is_a_create_container_config_error(
    env: list[dict[str, Any]], message: str
) -> None:
    container = {"name": "main", "command": ["true"], "env": env}
    with pytest.raises(CreateContainerConfigError, match=message):
        container_environment(pod(container), container, Store(config_maps={"cfg": {"a": "b"}}), NODE)


def test_resource_field_ref_divides_and_rounds_up_with_allocatable_for_unset_limits() -> None:
    container = {
        "name": "main",
        "command": ["true"],
        "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}},
        "env": [
            {
                "name": "REQ_CPU",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}},
            },
            {
                "name": "REQ_MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}},
            },
            {"name": "LIM_CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    environment = container_environment(pod(container), container, Store(), NODE)
    assert environment == {"REQ_CPU": "250", "REQ_MEM": "1024", "LIM_CPU": "2"}
    assert parse_quantity("1.5k") == 1500
    with pytest.raises(ValueError, match="not a resource quantity"):
        parse_quantity("lots")


def test_volumes_are_written_like_the_kubelet_writes_them(tmp_path: Path) -> None:
    container = {
        "name": "main",
        "command": ["true"],
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "creds", "mountPath": "/etc/creds"},
            {"name": "api", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
            {"name": "cfg", "mountPath": "/etc/mode", "subPath": "mode.txt"},
        ],
    }
    spec_volumes = [
        {"name": "scratch", "emptyDir": {}},
        {
            "name": "creds",
            "secret": {"secretName": "db", "items": [{"key": "url", "path": "db/url", "mode": 0o400}]},
        },
        {"name": "cfg", "configMap": {"name": "settings", "items": [{"key": "MODE", "path": "mode.txt"}]}},
        {
            "name": "api",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                        }
                    },
                ]
            },
        },
    ]
    the_pod = pod(container, volumes=spec_volumes)
    store = Store(
        secrets={"db": {"url": "postgresql://u:p@h/db"}},
        config_maps={"settings": {"MODE": "fast"}, "kube-root-ca.crt": {"ca.crt": "PEM"}},
    )
    volumes = materialize_volumes(the_pod, tmp_path, store)
    mounts = container_mounts(container, volumes)

    assert Path(mounts["/scratch"]).is_dir()
    assert not any(Path(mounts["/scratch"]).iterdir())
    url = Path(mounts["/etc/creds"]) / "db" / "url"
    assert url.read_text() == "postgresql://u:p@h/db"
    assert url.stat().st_mode & 0o777 == 0o400
    assert Path(mounts["/etc/mode"]).read_text() == "fast"
    api = Path(mounts["/var/run/secrets/kubernetes.io/serviceaccount"])
    assert (api / "token").read_text() == "token-for-worker-0"
    assert (api / "ca.crt").read_text() == "PEM"
    assert (api / "namespace").read_text() == "search"
    assert store.tokens == [(None, 3607)]

    with pytest.raises(CreateContainerConfigError, match='secret "db" not found'):
        materialize_volumes(the_pod, tmp_path, Store(config_maps=store.config_maps))


def bound_claim(name: str, volume: str, uid: str = "claim-uid") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "search", "uid": uid},
        "spec": {"volumeName": volume},
        "status": {"phase": "Bound"},
    }


def persistent_volume(source: dict[str, Any], claim_uid: str = "claim-uid") -> dict[str, Any]:
    return {
        "metadata": {"name": "pv"},
        "spec": {**source, "claimRef": {"name": "data", "namespace": "search", "uid": claim_uid}},
    }


def test_a_claim_is_the_directory_of_its_bound_host_path_volume_and_is_never_emptied(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "kept").write_text("from before")
    container = {
        "name": "main",
        "command": ["true"],
        "volumeMounts": [
            {"name": "store", "mountPath": "/data"},
            {"name": "store", "mountPath": "/data-ro", "readOnly": True},
            {"name": "frozen", "mountPath": "/frozen"},
        ],
    }
    the_pod = pod(
        container,
        volumes=[
            {"name": "store", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "frozen", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
        ],
    )
    store = Store(
        claims={"data": bound_claim("data", "pv")},
        persistent_volumes={"pv": persistent_volume({"hostPath": {"path": str(data)}})},
    )
    root = tmp_path / "pod" / "volumes"

    volumes = materialize_volumes(the_pod, root, store)
    assert volumes == {"store": data, "frozen": data}
    assert (data / "kept").read_text() == "from before"  # the PV's own directory, as it was
    assert not root.exists()
    mounts = volume_mounts(container, volumes, read_only_volumes(the_pod))
    assert [(m.mount_path, m.source, m.read_only) for m in mounts] == [
        ("/data", data, False),
        ("/data-ro", data, True),
        ("/frozen", data, True),  # the claim's readOnly holds for every mount of it
    ]

    # A `local` PersistentVolume's path; a hostPath's DirectoryOrCreate is created.
    local = Store(
        claims=store.claims, persistent_volumes={"pv": persistent_volume({"local": {"path": str(data)}})}
    )
    assert materialize_volumes(the_pod, root, local)["store"] == data
    fresh = tmp_path / "fresh" / "dir"
    created = Store(
        claims=store.claims,
        persistent_volumes={
            "pv": persistent_volume({"hostPath": {"path": str(fresh), "type": "DirectoryOrCreate"}})
        },
    )
    assert materialize_volumes(the_pod, root, created)["store"] == fresh
    assert fresh.is_dir()


@pytest.mark.parametrize(
    ("claims", "volumes", "message"),
    [
        ({}, {}, 'volume "store": persistentvolumeclaim "data" not found'),
        (
            {"data": {**bound_claim("data", ""), "spec": {}, "status": {"phase": "Pending"}}},
            {},
            'volume "store": persistentvolumeclaim "data" is not bound (phase Pending)',
        ),
        ({"data": bound_claim("data", "pv")}, {}, 'volume "store": PersistentVolume "pv" not found'),
        (
            {"data": bound_claim("data", "pv")},
            {"pv": persistent_volume({"hostPath": {"path": "/srv"}}, claim_uid="another-claim")},
            'volume "store": PersistentVolume "pv" is not bound to persistentvolumeclaim "data"',
        ),
        (
            {"data": bound_claim("data", "pv")},
            {"pv": persistent_volume({"nfs": {"server": "nas", "path": "/exports"}})},
            'volume "store": PersistentVolume "pv" has no hostPath or local source',
        ),
        (
            {"data": bound_claim("data", "pv")},
            {"pv": persistent_volume({"hostPath": {"path": "/nonexistent/vo-test", "type": "Directory"}})},
            'volume "store": hostPath type check failed: /nonexistent/vo-test does not exist',
        ),
        (
            {"data": bound_claim("data", "pv")},
            {"pv": persistent_volume({"local": {"path": "/nonexistent/vo-test"}})},
            'volume "store": path "/nonexistent/vo-test" does not exist',
        ),
    ],
)
def test_a_claim_that_is_missing_unbound_or_not_on_the_node_is_a_config_error(
    tmp_path: Path, claims: dict[str, Any], volumes: dict[str, Any], message: str
) -> None:
    the_pod = pod(
        {"name": "main", "command": ["true"]},
        volumes=[{"name": "store", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    with pytest.raises(CreateContainerConfigError) as raised:
        materialize_volumes(the_pod, tmp_path, Store(claims=claims, persistent_volumes=volumes))
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (
            {"containers": [{"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"]}]},
            "2 containers",
        ),
        ({"containers": [{"name": "a", "image": "busybox"}]}, "no `command`"),
        (
            {
                "containers": [{"name": "a", "command": ["true"]}],
                "volumes": [{"name": "d", "nfs": {"server": "nas", "path": "/exports"}}],
            },
            "volume 'd' of type nfs",
        ),
        (
            {"containers": [{"name": "a", "command": ["true"]}], "initContainers": [{"name": "i"}]},
            "initContainers",
        ),
    ],
)
def test_pods_the_node_cannot_honour_are_named_with_the_missing_feature(
    spec: dict[str, Any], problem: str
) -> None:
    problems = unsupported_features({"metadata": {}, "spec": spec})
    assert any(problem in p for p in problems), problems


def test_a_plain_single_container_pod_is_supported() -> None:
    spec = {
        "containers": [
            {"name": "a", "command": ["python"], "volumeMounts": [{"name": "x", "mountPath": "/x"}]}
        ],
        "volumes": [
            {"name": "x", "emptyDir": {}},
            {"name": "t", "projected": {"sources": []}},
            {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
        ],
    }
    assert unsupported_features({"metadata": {}, "spec": spec}) == []
