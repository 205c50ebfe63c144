"""The node agent decides a container's command, environment, user and working directory from its
image's config and its spec as the kubelet and a CRI runtime do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from localcluster.container_init import resolve_in_root
from localcluster.image_config import (
    DEFAULT_PATH,
    ImageConfig,
    ProcessUser,
    process_command,
    process_environment,
    process_user,
    working_directory,
)
from localcluster.pod_environment import CreateContainerConfigError
from localcluster.pod_runtime import CreateContainerError
from localcluster.pod_support import unsupported_features

IMAGE = ImageConfig(
    env=("PATH=/app/bin:/bin", "LANG=C.UTF-8", "MODE=image"),
    entrypoint=("/entrypoint.sh",),
    cmd=("serve", "--port=80"),
    working_dir="/app",
    user="app",
)
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:2000:2001:app:/home/app:/bin/sh\n# comment\nbroken\n"
GROUP = "root:x:0:\napp:x:2001:\nextra:x:3000:app,other\nbroken:x:notanumber:\n"


def pod(**security: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": []}
    if security:
        spec["securityContext"] = security
    return {"metadata": {"name": "p", "namespace": "n"}, "spec": spec}


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        ({}, ["/entrypoint.sh", "serve", "--port=80"]),
        ({"args": ["check", "$(WHO)"]}, ["/entrypoint.sh", "check", "me"]),
        # command replaces the Entrypoint, and then the image's Cmd is not used
        ({"command": ["/bin/sh", "-c", "echo $(WHO)"]}, ["/bin/sh", "-c", "echo me"]),
        ({"command": ["run"], "args": ["$$(WHO)", "$(UNKNOWN)"]}, ["run", "$(WHO)", "$(UNKNOWN)"]),
    ],
)
def test_command_and_args_override_entrypoint_and_cmd(container: dict[str, Any], argv: list[str]) -> None:
    assert process_command(container, IMAGE, {"WHO": "me"}) == argv


def test_a_container_with_nothing_to_run_cannot_be_created() -> None:
    with pytest.raises(CreateContainerError, match="no command specified"):
        process_command({"name": "main", "image": "scratchy"}, ImageConfig(), {})
    # Only a Cmd is enough (the Entrypoint is empty).
    assert process_command({}, ImageConfig(cmd=("/bin/true",)), {}) == ["/bin/true"]


def test_environment_is_the_images_then_the_kubelets() -> None:
    kubelet = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "MODE": "pod"}
    environment = process_environment(IMAGE, "p", kubelet, "/home/app")
    assert environment == {
        "PATH": "/app/bin:/bin",
        "LANG": "C.UTF-8",
        "MODE": "pod",
        "HOSTNAME": "p",
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "HOME": "/home/app",
    }
    bare = process_environment(ImageConfig(), "p", {"HOME": "/data"}, "/root")
    assert bare == {"PATH": DEFAULT_PATH, "HOSTNAME": "p", "HOME": "/data"}


def test_working_directory_from_the_container_else_the_image() -> None:
    assert working_directory({"workingDir": "/work"}, IMAGE) == "/work"
    assert working_directory({}, IMAGE) == "/app"
    assert working_directory({}, ImageConfig()) == "/"


@pytest.mark.parametrize(
    ("image_user", "the_pod", "container", "expected"),
    [
        # The image's User, by name: uid, primary group, memberships and home from its files.
        ("app", pod(), {}, ProcessUser(2000, 2001, (2001, 3000), "/home/app")),
        ("", pod(), {}, ProcessUser(0, 0, (0,), "/root")),
        ("2000:extra", pod(), {}, ProcessUser(2000, 3000, (3000,), "/home/app")),
        ("4242:99", pod(), {}, ProcessUser(4242, 99, (99,), "/")),
        # runAsUser wins over the image's User; without runAsGroup, the passwd entry's group or 0.
        ("app", pod(runAsUser=1000), {}, ProcessUser(1000, 0, (0,), "/")),
        ("", pod(runAsUser=2000), {}, ProcessUser(2000, 2001, (2001, 3000), "/home/app")),
        # The container's securityContext wins over the pod's, field by field.
        (
            "app",
            pod(runAsUser=1000, runAsGroup=1000, supplementalGroups=[5000], fsGroup=6000),
            {"securityContext": {"runAsUser": 1001}},
            ProcessUser(1001, 1000, (1000, 5000, 6000), "/"),
        ),
        ("app", pod(), {"securityContext": {"runAsGroup": 7}}, ProcessUser(2000, 7, (7, 3000), "/home/app")),
    ],
)
def test_user_from_security_context_else_the_image(
    image_user: str, the_pod: dict[str, Any], container: dict[str, Any], expected: ProcessUser
) -> None:
    image = ImageConfig(user=image_user)
    assert process_user(the_pod, container, image, PASSWD, GROUP) == expected


def test_unknown_user_names_and_root_with_run_as_non_root_are_refused() -> None:
    with pytest.raises(CreateContainerError, match="unable to find user nobody"):
        process_user(pod(), {}, ImageConfig(user="nobody"), PASSWD, GROUP)
    with pytest.raises(CreateContainerError, match="unable to find group staff"):
        process_user(pod(), {}, ImageConfig(user="app:staff"), PASSWD, GROUP)
    with pytest.raises(CreateContainerConfigError, match="runAsNonRoot and image will run as root"):
        process_user(pod(runAsNonRoot=True), {}, ImageConfig(), PASSWD, GROUP)
    allowed = process_user(pod(runAsNonRoot=True), {}, IMAGE, PASSWD, GROUP)
    assert allowed.uid == 2000


def test_image_config_from_buildah_inspect() -> None:
    inspected = {
        "OCIv1": {"config": {"Env": ["A=1"], "Entrypoint": ["/e"], "Cmd": None, "WorkingDir": "/w"}},
        "Docker": {"config": {"User": "ignored"}},
    }
    assert ImageConfig.from_inspect(inspected) == ImageConfig(("A=1",), ("/e",), (), "/w", "")
    assert ImageConfig.from_inspect({"Docker": {"config": {"User": "1:2"}}}).user == "1:2"


def test_paths_resolve_inside_the_root_whatever_the_images_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    os.symlink("/run", root / "var" / "run")  # Debian's /var/run -> /run: absolute, inside the image
    os.symlink("../../..", root / "run" / "up")
    os.symlink("loop", root / "loop")
    top = str(root)
    assert resolve_in_root(top, "/var/run/secrets/x") == f"{top}/run/secrets/x"
    assert resolve_in_root(top, "/run/up/etc/passwd") == f"{top}/etc/passwd"
    assert resolve_in_root(top, "../../etc/hosts") == f"{top}/etc/hosts"
    with pytest.raises(OSError, match="too many levels"):
        resolve_in_root(top, "/loop/x")


def test_a_pod_without_command_runs_when_its_image_is_local() -> None:
    the_pod = {"spec": {"containers": [{"name": "a", "image": "busybox"}]}}
    assert unsupported_features(the_pod, from_image=True) == []
    assert "no `command`" in unsupported_features(the_pod)[0]
