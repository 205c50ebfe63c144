"""`python -m localcluster up|down|status [--state-dir DIR]`: the local control plane's CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from localcluster.cluster import ClusterError, LocalCluster

DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent.parent / ".devenv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where state lives (default: .devenv)"
    )
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.state_dir)

    if args.command == "status":
        running = cluster.status()
        if running is None:
            print(f"not running (state dir {cluster.state_dir}); start it with `make cluster-up`")
            return 1
        print(f"running: {running.server}\nkubeconfig: {running.kubeconfig}")
        return 0

    if args.command == "down":
        if cluster.down():
            print(f"stopped the local cluster and removed its state in {cluster.state_dir}")
        else:
            print(f"nothing was running from {cluster.state_dir}; removed any leftover state")
        return 0

    already = cluster.status()
    if already is not None:
        print(
            f"the local cluster is already running at {already.server} (kubeconfig {already.kubeconfig});"
            " nothing to do. `make cluster-down` stops it."
        )
        return 0
    try:
        running = cluster.up()
    except ClusterError as error:
        print(f"cluster-up failed: {error}", file=sys.stderr)
        return 1
    print(f"the local cluster is up at {running.server}\nkubeconfig: {running.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
