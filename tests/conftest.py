"""Shared fixtures: the real local Kubernetes control plane and a real Milvus Lite server.

Fixtures (all real processes, no mocks):

- ``cluster`` (session): a :class:`localcluster.cluster.RunningCluster`; brings the local control
  plane up for the test session, or reuses one that ``make cluster-up`` already started (then it is
  left running afterwards).
- ``namespace`` (function): a fresh namespace for one test, deleted afterwards.
- ``kubectl`` (function): runs the built kubectl against the cluster, in the test's namespace.
- ``milvus_server`` (session): a Milvus Lite server on 127.0.0.1 with its data in a temp dir.
- ``s3_server`` (session): a real S3-compatible server (SeaweedFS, built from its Go module by
  devenv/build-seaweedfs.sh) on 127.0.0.1 with its data in a temp dir and one generated identity.
- ``postgres`` (session): a real PostgreSQL from Debian's packages (``apt-get install postgresql``;
  .ci/run installs it), initialised in a temp dir and started on a free port of 127.0.0.1 with
  password authentication; under root it runs as the ``postgres`` system user.
- ``crds`` (session): the CRDs from crds/ applied to the cluster and Established.
- ``operator`` (function): `vector-operator run` watching the test's namespace, talking to
  ``milvus_server`` by default; before it stops, the namespace's resources are deleted through it
  (so no finalizer is left behind).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster.cluster import Kubectl, LocalCluster, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.operator_process import OperatorProcess
from localcluster.operator_process import start_operator as start_host_operator
from localcluster.ports import free_port
from localcluster.s3_server import S3Server

REPO_ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def cluster() -> Iterator[RunningCluster]:
    local = LocalCluster(state_dir=Path(os.environ.get("VO_DEVENV_DIR", REPO_ROOT / ".devenv")))
    already_running = local.status() is not None
    running = local.up()
    try:
        yield running
    finally:
        if not already_running and not os.environ.get("VO_KEEP_CLUSTER"):
            local.down()


@pytest.fixture
def namespace(cluster: RunningCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = request.node.name.lower().replace("_", "-")
    keep = "".join(ch for ch in base if ch.isalnum() or ch == "-")[:40].strip("-")
    name = f"t-{keep}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def kubectl(cluster: RunningCluster, namespace: str) -> Kubectl:
    return Kubectl(cluster, namespace)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusLiteServer]:
    server = MilvusLiteServer(data_dir=tmp_path_factory.mktemp("milvus-lite"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(data_dir=tmp_path_factory.mktemp("s3-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


CRD_NAMES = (
    "vectorcollections.vectors.aios.dev",
    "migrationplans.vectors.aios.dev",
    "rollbackpolicies.vectors.aios.dev",
)


@pytest.fixture(scope="session")
def crds(cluster: RunningCluster) -> None:
    """The CRDs from crds/, applied server-side (no last-applied annotation, whose 256 KiB limit
    large CRDs outgrow) and Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    for name in CRD_NAMES:
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")


def start_operator(
    cluster: RunningCluster, namespace: str, milvus_uri: str, log: Path, *extra: str
) -> OperatorProcess:
    """The operator on the host (localcluster.operator_process) with the tests' short check and
    probe intervals (``extra`` may set others: later options win)."""
    quick = ("--check-interval", "2", "--probe-interval", "2")
    return start_host_operator(cluster, namespace, milvus_uri, log, *quick, *extra)


@pytest.fixture
def operator(
    cluster: RunningCluster, crds: None, namespace: str, milvus_server: MilvusLiteServer, tmp_path: Path
) -> Iterator[OperatorProcess]:
    running = start_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator.log")
    try:
        yield running
    finally:
        running.shut_down(cluster, namespace)


@dataclass
class PostgresServer:
    """A running PostgreSQL; ``url`` is a SQLAlchemy URL with the password in it."""

    url: str
    password: str
    port: int


# -- PostgreSQL --------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        pytest.fail(
            "PostgreSQL is not installed: apt-get install -y postgresql (Debian package; .ci/run installs it)"
        )
    return Path(candidates[-1]).parent


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = _postgres_bin()
    as_postgres: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="vo-postgres-"))
    data, log = base / "data", base / "server.log"
    password = "pg-" + uuid.uuid4().hex
    (base / "pwfile").write_text(password + "\n")
    if as_postgres:
        shutil.chown(base, "postgres")
        shutil.chown(base / "pwfile", "postgres")
    port = free_port()

    def pg(*command: str) -> None:
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=120)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "vo", "--auth=scram-sha-256",
       f"--pwfile={base / 'pwfile'}", "--encoding=UTF8", "--locale=C.UTF-8")  # fmt: skip
    options = (
        f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
        " -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20"
    )
    pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    try:
        yield PostgresServer(
            url=f"postgresql+psycopg://vo:{password}@127.0.0.1:{port}/postgres", password=password, port=port
        )
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
