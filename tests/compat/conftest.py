"""The compatibility tier's fixture: a real Milvus standalone 2.3 (the `milvus` package, installed by
`pip install '.[compat]'`), reachable on 127.0.0.1 only (see localcluster.milvus_standalone).

These tests are marked `compat`: `make test` runs them with the rest, `make test-compat` alone. Where
the machine refuses the private network namespace Milvus must run in (neither root nor
unprivileged user namespaces), they are skipped with that reason rather than let Milvus listen
on every interface.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from localcluster.milvus_standalone import MilvusStandaloneServer, MilvusStandaloneUnavailable


@pytest.fixture(scope="session")
def milvus_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusStandaloneServer]:
    if importlib.util.find_spec("milvus") is None:
        pytest.fail("the compatibility tier needs Milvus standalone: pip install -e '.[compat]'")
    base = tmp_path_factory.mktemp("milvus-standalone")
    server = MilvusStandaloneServer(data_dir=base / "data", log_path=base / "milvus.log")
    try:
        server.start()
    except MilvusStandaloneUnavailable as error:
        # Refuse rather than let Milvus listen on every interface of this machine.
        pytest.skip(f"Milvus standalone not started: {error}")
    print(
        f"\nMilvus standalone {server.version} answered {server.startup_s:.1f}s after start at {server.uri}"
    )
    try:
        yield server
    finally:
        server.stop()
