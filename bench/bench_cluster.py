"""The local cluster a benchmark runs on: the one `make cluster-up` keeps running, or one brought
up for the run and down again afterwards (unless the run keeps it). SIGTERM unwinds like Ctrl-C,
so whatever the benchmark started is cleaned up."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from localcluster.cluster import LocalCluster, RunningCluster

REPO_ROOT = Path(__file__).resolve().parent.parent


def add_state_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("VO_DEVENV_DIR", REPO_ROOT / ".devenv")),
        help="the local cluster's state directory (default .devenv)",
    )


@contextlib.contextmanager
def bench_cluster(state_dir: Path, keep: bool = False) -> Iterator[RunningCluster]:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    local = LocalCluster(state_dir)
    brought_up = local.status() is None
    if brought_up:
        print("no local cluster running: bringing one up (make cluster-up keeps one between runs)")
    cluster = local.up()
    try:
        yield cluster
    finally:
        if brought_up and not keep:
            local.down()
        elif brought_up:
            print(f"the local cluster this run brought up is left running ({state_dir}): make cluster-down")
