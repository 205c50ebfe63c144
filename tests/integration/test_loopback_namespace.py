"""A server that binds every interface, run through localcluster.loopback_namespace, is reachable
on the host's 127.0.0.1 only (how the compatibility tier runs Milvus standalone)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.loopback_namespace import EXIT_NAMESPACE_UNAVAILABLE
from localcluster.ports import free_port

DEVENV = Path(__file__).resolve().parents[2] / "devenv"
LOOPBACK = "0100007F"


def listening_on_host(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of the LISTEN sockets of `pids` that this (the host's) namespace shows."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except FileNotFoundError:  # closed since it was listed: not a listening socket
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/self/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                address, port = fields[1].split(":")
                found.add((address, int(port, 16)))
    return found


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # exited meanwhile
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    (tmp_path / "hello.txt").write_text("hello from inside")
    port = free_port()
    command = [
        sys.executable, "-m", "localcluster.loopback_namespace", "--forward", f"{port}:8000", "--",
        sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "--directory", str(tmp_path), "8000",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(DEVENV)}
    process = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def fetch(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=2) as response:
            text: str = response.read().decode()
            return text
    except OSError:
        return None


def test_a_server_on_every_interface_is_reachable_on_loopback_only(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = served
    deadline = time.monotonic() + 20
    while (body := fetch(port)) is None and time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            if process.returncode == EXIT_NAMESPACE_UNAVAILABLE:
                pytest.skip(f"no private network namespace here: {stderr.strip()}")
            pytest.fail(f"the forwarder exited with {process.returncode}: {stderr}")
        time.sleep(0.2)
    assert body == "hello from inside"

    children = children_of(process.pid)
    assert children, "the server runs as the forwarder's child"
    # The server asked for 0.0.0.0:8000; the host sees only the forwarded port, on 127.0.0.1.
    assert listening_on_host([process.pid, *children]) == {(LOOPBACK, port)}

    # SIGTERM reaches the server; the forwarder exits with its status.
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(10) == 128 + signal.SIGTERM
