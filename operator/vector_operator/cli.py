"""The `vector-operator` command.

Subcommands: `run` starts the operator; `worker` runs one embedding batch (inside a Job pod);
`sync` keeps a plan's collection in step with its source table (inside the plan's sync Deployment);
`task` runs one of a plan's one-off tasks (inside a Job pod): a backup, or an inventory.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from vector_operator import DEFAULT_WORKER_IMAGE, __version__
from vector_operator.sources.sql_engine import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_STATEMENT_TIMEOUT_S


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vector-operator",
        description="A Kubernetes operator (Kopf) for Milvus vector collections, embedding migrations"
        " and automatic rollback.",
    )
    parser.add_argument("--version", action="version", version=f"vector-operator {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    from vector_operator.worker import command as worker_command

    worker_command.configure_parser(
        commands.add_parser(
            "worker",
            help="run one embedding batch (inside a Job pod): read, embed, check, upsert into Milvus",
            description=worker_command.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    from vector_operator.worker import sync_command

    sync_command.configure_parser(
        commands.add_parser(
            "sync",
            help="keep a MigrationPlan's collection in step with its source table (in its sync Deployment)",
            description=sync_command.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    from vector_operator.worker import task_command

    task_command.configure_parser(
        commands.add_parser(
            "task",
            help="run one of a MigrationPlan's one-off tasks (inside a Job pod): back a collection up to"
            " Parquet, count a files source's records, or verify a backup",
            description=task_command.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    run_parser = commands.add_parser(
        "run",
        help="run the operator (Kopf): reconcile VectorCollections, MigrationPlans, RollbackPolicies",
    )
    scope = run_parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    run_parser.add_argument(
        "--milvus-uri",
        default=os.environ.get("VECTOR_OPERATOR_MILVUS_URI"),
        help="the Milvus for collections whose spec.milvus.uri is empty (env VECTOR_OPERATOR_MILVUS_URI)",
    )
    run_parser.add_argument(
        "--metrics-port", type=int, default=8080, help="Prometheus /metrics port (0: serve no metrics)"
    )
    run_parser.add_argument(
        "--metrics-address", default="127.0.0.1", help="address /metrics and /healthz listen on"
    )
    run_parser.add_argument("--liveness-port", type=int, help="serve Kopf's liveness probe on /healthz here")
    run_parser.add_argument(
        "--check-interval", type=float, default=30.0, help="seconds between each object's periodic check"
    )
    run_parser.add_argument(
        "--probe-interval", type=float, default=60.0, help="seconds between canary search probes"
    )
    run_parser.add_argument(
        "--plan-interval", type=float, default=5.0, help="seconds between steps of a running MigrationPlan"
    )
    run_parser.add_argument(
        "--copy-page-size",
        type=int,
        default=1000,
        help="rows per page when a re-index copies stored vectors into the new collection",
    )
    run_parser.add_argument(
        "--worker-image",
        default=DEFAULT_WORKER_IMAGE,
        help="image of the embedding Job pods (plans may override)",
    )
    run_parser.add_argument(
        "--worker-command",
        default="vector-operator worker",
        help="the embedding Jobs' command, split on spaces (default: vector-operator worker)",
    )
    run_parser.add_argument(
        "--allowed-worker-image",
        action="append",
        default=[],
        metavar="IMAGE",
        help="an image MigrationPlans may choose for their Jobs (repeatable); --worker-image is always"
        " allowed, any other is refused",
    )
    run_parser.add_argument(
        "--worker-service-account",
        metavar="NAME",
        help="the ServiceAccount embedding Jobs run as when a plan names none (always allowed); it must"
        " exist in each namespace plans run in. Default: the namespace's default ServiceAccount",
    )
    run_parser.add_argument(
        "--allowed-worker-service-account",
        action="append",
        default=[],
        metavar="NAME",
        help="a ServiceAccount MigrationPlans may run their Jobs as (repeatable); none by default",
    )
    run_parser.add_argument(
        "--source-connect-timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT_S,
        help="seconds the planner waits to connect to a source database",
    )
    run_parser.add_argument(
        "--source-statement-timeout",
        type=float,
        default=DEFAULT_STATEMENT_TIMEOUT_S,
        help="seconds one planning statement (the key scan) may take (PostgreSQL, MySQL)",
    )
    run_parser.add_argument(
        "--peering",
        metavar="NAME",
        help="run as one of several replicas: Kopf's peering object NAME (KopfPeering in each watched"
        " namespace, ClusterKopfPeering with --all-namespaces; its CRDs must be installed) elects the"
        " replica with the highest --priority, the others pause until it is gone. Without it the"
        " operator runs standalone: run exactly one replica",
    )
    run_parser.add_argument(
        "--priority",
        type=int,
        help="this replica's peering priority (default with --peering: drawn at random, so that replicas"
        " of one Deployment never tie: Kopf pauses every replica of a tied priority)",
    )
    run_parser.add_argument("--log-format", choices=["plain", "json"], default="plain")
    run_parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        from vector_operator.operator_runtime import RunOptions, run

        if not args.namespace and not args.all_namespaces:
            parser.error("run: name the namespaces to watch (--namespace NS, repeatable) or --all-namespaces")
        if args.priority is not None and not args.peering:
            parser.error("run: --priority needs --peering (a standalone operator has no peers to outrank)")
        run(
            RunOptions(
                namespaces=tuple(args.namespace),
                all_namespaces=args.all_namespaces,
                milvus_uri=args.milvus_uri,
                metrics_port=args.metrics_port,
                metrics_address=args.metrics_address,
                liveness_port=args.liveness_port,
                check_interval_s=args.check_interval,
                probe_interval_s=args.probe_interval,
                plan_interval_s=args.plan_interval,
                copy_page_size=args.copy_page_size,
                worker_image=args.worker_image,
                worker_command=tuple(shlex.split(args.worker_command)),
                allowed_worker_images=tuple(args.allowed_worker_image),
                worker_service_account=args.worker_service_account,
                allowed_worker_service_accounts=tuple(args.allowed_worker_service_account),
                source_connect_timeout_s=args.source_connect_timeout,
                source_statement_timeout_s=args.source_statement_timeout,
                peering=args.peering,
                priority=args.priority,
                log_format=args.log_format,
                verbose=args.verbose,
            )
        )
        return 0
    if args.command == "worker":
        worker_command.exit_process(worker_command.main(args.assignment))
    if args.command == "sync":
        worker_command.exit_process(sync_command.main(args.assignment))
    if args.command == "task":
        worker_command.exit_process(task_command.main(args.assignment))
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
