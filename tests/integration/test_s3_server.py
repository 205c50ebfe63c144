"""The s3_server fixture is a real S3 server (SeaweedFS) that pyarrow reads and writes Parquet on,
with authentication on and every listener on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs as pafs

from localcluster.s3_server import S3Server

# pyarrow names the S3 error in its own spelling (ACCESS_DENIED, SIGNATURE_DOES_NOT_MATCH, ...):
# HeadObject's 403 has no body to say more.
REFUSED = r"(?i)access.?denied|signature.?does.?not.?match|invalid.?access.?key"


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    name = f"vo-test-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(name)
    return name


def _table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(100), pa.int64()),
            "text": [f"row {i}" for i in range(100)],
            "vector": pa.array([[float(i), float(-i), 0.5] for i in range(100)], pa.list_(pa.float32(), 3)),
        }
    )


def test_parquet_round_trip(s3_server: S3Server, bucket: str) -> None:
    assert s3_server.endpoint.startswith("http://127.0.0.1:")
    s3 = s3_server.filesystem()
    path = f"{bucket}/prefix/file.parquet"
    table = _table()
    pq.write_table(table, path, filesystem=s3)

    assert bucket in [info.path for info in s3.get_file_info(pafs.FileSelector("/"))]
    listed = s3.get_file_info(pafs.FileSelector(f"{bucket}/prefix", recursive=True))
    assert [(info.path, info.type) for info in listed] == [(path, pafs.FileType.File)]
    assert (listed[0].size or 0) > 0
    assert pq.read_table(path, filesystem=s3).equals(table)
    # The same object through an s3:// URI carrying the endpoint and keys, as configuration would.
    query = urlencode({"endpoint_override": s3_server.endpoint, "region": s3_server.region})
    uri = f"s3://{s3_server.access_key}:{quote(s3_server.secret_key, safe='')}@{path}?{query}"
    from_uri, uri_path = pafs.FileSystem.from_uri(uri)
    assert uri_path == path
    assert pq.read_table(uri_path, filesystem=from_uri).equals(table)


def test_a_wrong_secret_key_is_refused(s3_server: S3Server, bucket: str) -> None:
    path = f"{bucket}/refused/file.parquet"
    pq.write_table(_table(), path, filesystem=s3_server.filesystem())
    wrong_secret = s3_server.filesystem(secret_key=s3_server.secret_key[::-1])
    with pytest.raises(OSError, match=REFUSED):
        pq.read_table(path, filesystem=wrong_secret)
    with pytest.raises(OSError, match=REFUSED):
        pq.write_table(_table(), f"{bucket}/refused/other.parquet", filesystem=wrong_secret)
    unknown_key = s3_server.filesystem(access_key="VO" + "0" * 18)
    with pytest.raises(OSError, match=REFUSED):
        pq.read_table(path, filesystem=unknown_key)


def test_a_missing_bucket_is_reported(s3_server: S3Server) -> None:
    s3 = s3_server.filesystem()
    missing = f"vo-missing-{uuid.uuid4().hex[:8]}"
    assert s3.get_file_info(missing).type == pafs.FileType.NotFound
    with pytest.raises(FileNotFoundError, match=missing):
        pq.read_table(f"{missing}/prefix/file.parquet", filesystem=s3)
    with pytest.raises(OSError, match=f"bucket '{missing}'.*NO_SUCH_BUCKET"):
        pq.write_table(_table(), f"{missing}/prefix/file.parquet", filesystem=s3)
    assert missing not in [info.path for info in s3.get_file_info(pafs.FileSelector("/"))]


def _listening_addresses(pid: int) -> set[str]:
    """host:port of every TCP socket the process listens on (from /proc, as `ss -ltnp` does)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed since the directory was listed
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    addresses = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                host, port = local.split(":")
                address = bytes.fromhex(host)
                if width == 8:
                    address = address[::-1]
                    addresses.add(f"{'.'.join(str(b) for b in address)}:{int(port, 16)}")
                else:
                    addresses.add(f"[{address.hex()}]:{int(port, 16)}")
    return addresses


def test_every_listener_is_on_loopback(s3_server: S3Server) -> None:
    assert s3_server.pid is not None
    addresses = _listening_addresses(s3_server.pid)
    assert f"127.0.0.1:{s3_server.port}" in addresses
    assert addresses
    assert all(address.startswith("127.0.0.1:") for address in addresses), addresses
