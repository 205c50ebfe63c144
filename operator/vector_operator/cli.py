"""The `vector-operator` command.

Its subcommands (`run`, the operator; `worker`, one embedding batch) arrive with the capabilities
that implement them; for now it reports its version.
"""

from __future__ import annotations

import argparse
import sys

from vector_operator import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vector-operator",
        description="A Kubernetes operator (Kopf) for Milvus vector collections, embedding migrations"
        " and automatic rollback.",
    )
    parser.add_argument("--version", action="version", version=f"vector-operator {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
