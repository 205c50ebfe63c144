"""Enters an image's root filesystem and executes the container's process (image_runtime's helper).

Run as `unshare --mount --pid --fork --kill-child -- python -I -S container_init.py SPEC.json`: it
is the first process of a new PID namespace, in a private mount namespace, still on the host's
filesystem. It reads SPEC (written by image_runtime), then:

1. bind-mounts the root (a working container's mount point) onto itself, so it is a mount of its
   own that can be made read-only;
2. mounts what the spec lists, in order, at paths resolved *inside* the root (a symlink in the
   image, such as Debian's /var/run -> /run, never leads out of it): /proc for the new PID
   namespace, a minimal /dev, a fresh /tmp, the volumes, /etc/resolv.conf, /etc/hosts, the
   termination-message file; creating the mount points it needs;
3. creates the working directory, remounts the root read-only for `readOnlyRootFilesystem`;
4. `chroot`s into the root, drops to the user's uid, gid and groups, changes to the working
   directory and executes the command with the container's environment, so the container's
   process is PID 1 of its namespace, as in a container runtime.

Only the standard library: it runs with `-I -S` before anything of the image is trusted.
A failure before the exec is written to stderr (the container's log) and exits 128, as a
runtime's StartError.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from typing import Any

START_ERROR = 128
MAX_SYMLINKS = 40


def resolve_in_root(root: str, path: str) -> str:
    """`path` as seen from inside `root`, as a host path: symlinks in its existing components are
    followed relative to `root` (an absolute link restarts at `root`; `..` never climbs above it)."""
    pending = [part for part in path.split("/") if part not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {result.stderr.strip() or f'exit {result.returncode}'}")


def _mount_point(target: str, directory: bool) -> None:
    if directory:
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.lexists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644))


def mount(root: str, entry: dict[str, Any]) -> None:
    kind = entry["type"]
    target = resolve_in_root(root, entry["target"])
    if kind == "bind":
        source = entry["source"]
        _mount_point(target, os.path.isdir(source))
        _run("mount", "--bind", source, target)
        if entry.get("readOnly"):
            _run("mount", "-o", "remount,bind,ro", target)
        return
    _mount_point(target, True)
    options = entry.get("options", "")
    _run("mount", "-t", kind, *(["-o", options] if options else []), kind, target)


def enter(spec: dict[str, Any]) -> None:
    root = spec["root"]
    _run("mount", "--bind", root, root)
    for entry in spec["mounts"]:
        try:
            mount(root, entry)
        except OSError:
            if not entry.get("optional"):
                raise
    for link in spec.get("links", []):
        path = resolve_in_root(root, link["path"])
        if not os.path.lexists(path):
            os.symlink(link["target"], path)
    working_dir = spec["workingDir"]
    os.makedirs(resolve_in_root(root, working_dir), exist_ok=True)
    if spec.get("readOnlyRoot"):
        _run("mount", "-o", "remount,bind,ro", root)

    os.chroot(root)
    os.chdir("/")
    os.setgroups(spec["groups"])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.chdir(working_dir)


def main(argv: list[str]) -> int:
    with open(argv[1]) as file:
        spec: dict[str, Any] = json.load(file)
    try:
        enter(spec)
    except OSError as error:
        print(f"container_init: cannot start the container: {error}", file=sys.stderr, flush=True)
        return START_ERROR
    # Python ignores these; an ignored signal stays ignored across exec.
    for number in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    command: list[str] = spec["argv"]
    try:
        os.execvpe(command[0], command, spec["env"])  # noqa: S606 (the container's own argv)
    except OSError as error:
        print(
            f"container_init: exec {command[0]!r} failed: {error.strerror or error}",
            file=sys.stderr,
            flush=True,
        )
    return START_ERROR


if __name__ == "__main__":
    sys.exit(main(sys.argv))
