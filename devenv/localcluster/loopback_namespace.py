"""Run a server that insists on listening on every interface so that it is reachable on the
host's 127.0.0.1 only.

Some servers cannot be told where to listen: Milvus 2.3 standalone binds its gRPC and HTTP ports
on `[::]` whatever its configuration says. Run such a command with::

    python -m localcluster.loopback_namespace --forward HOST_PORT:INNER_PORT ... -- COMMAND ...

This process binds each HOST_PORT on the host's 127.0.0.1 first, then moves itself into a new,
private network namespace (a user namespace too when not root) whose only interface is its own
loopback, starts COMMAND there, and forwards every connection to a HOST_PORT to INNER_PORT inside.
COMMAND may bind whatever it likes: nothing outside this process can reach it except through
the forwarded loopback ports. This process exits with COMMAND's exit status (128 + N when a
signal N ended it), or 125 when no private network namespace can be had; SIGTERM and SIGINT are
passed on to COMMAND. Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq on Linux: the interface name, then the flags in a 24-byte union
EXIT_NAMESPACE_UNAVAILABLE = 125


class NamespaceUnavailable(RuntimeError):
    """The kernel or the sandbox refuses a private network namespace."""


def enter_private_network() -> None:
    """Moves this (single-threaded) process into a new network namespace and brings its loopback
    up. Sockets opened before stay in the host's namespace; sockets opened after are private."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWNET | CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        error = ctypes.get_errno()
        raise NamespaceUnavailable(
            f"unshare({'CLONE_NEWNET' if flags == CLONE_NEWNET else 'CLONE_NEWNET|CLONE_NEWUSER'}) failed:"
            f" {os.strerror(error)}; run as root or allow unprivileged user namespaces"
            " (sysctl kernel.unprivileged_userns_clone=1)"
        )
    if flags & CLONE_NEWUSER:
        # Keep our own uid and gid inside, so the files we create stay ours.
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack(_IFREQ, b"lo", 0)
        current = struct.unpack(_IFREQ, fcntl.ioctl(control, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(control, SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", current | IFF_UP))


def _pump(source: socket.socket, destination: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            destination.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            destination.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, inner_port: int) -> None:
    with client:
        try:
            upstream = socket.create_connection(("127.0.0.1", inner_port), timeout=10)
        except OSError:
            return  # the server is not listening yet: the client sees a closed connection and retries
        with upstream:
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            outbound = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
            outbound.start()
            _pump(upstream, client)
            outbound.join()


def _serve(listener: socket.socket, inner_port: int) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_relay, args=(client, inner_port), daemon=True).start()


def _parse_forward(text: str) -> tuple[int, int]:
    host, _, inner = text.partition(":")
    try:
        return int(host), int(inner or host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST_PORT:INNER_PORT, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.loopback_namespace",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--forward",
        type=_parse_forward,
        action="append",
        default=[],
        metavar="HOST_PORT:INNER_PORT",
        help="forward the host's 127.0.0.1:HOST_PORT to INNER_PORT inside (repeatable)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the command to run after --")

    listeners: list[tuple[socket.socket, int]] = []
    for host_port, inner_port in args.forward:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", host_port))
        listener.listen(128)
        listeners.append((listener, inner_port))
    try:
        enter_private_network()
    except (NamespaceUnavailable, OSError) as error:
        print(f"loopback_namespace: {error}", file=sys.stderr, flush=True)
        return EXIT_NAMESPACE_UNAVAILABLE

    child = subprocess.Popen(command)

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    for listener, inner_port in listeners:
        threading.Thread(target=_serve, args=(listener, inner_port), daemon=True).start()
    status = child.wait()
    return 128 - status if status < 0 else status  # killed by a signal: the shell's 128 + N


if __name__ == "__main__":
    sys.exit(main())
