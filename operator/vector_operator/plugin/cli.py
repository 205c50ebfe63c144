"""`kubectl vector`: the operator's kubectl plugin (the `kubectl-vector` command this package
installs; kubectl finds it on PATH).

    kubectl vector status [-n NS | -A] [--watch]
    kubectl vector approve|promote|pause|resume|abort|retry|rollback PLAN [-n NS]
    kubectl vector history [PLAN | COLLECTION] [-n NS | -A]
    kubectl vector tuning COLLECTION [-n NS]
    kubectl vector report PLAN -o FILE.png|FILE.html [-n NS]
    kubectl vector lint FILE [FILE ...]

Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from vector_operator.api.migrationplan import MigrationPlanSpec, MigrationPlanStatus
from vector_operator.api.vectorcollection import VectorCollectionStatus
from vector_operator.plugin import actions, history_view, status_view, tuning_view
from vector_operator.plugin.cluster import Cluster, PluginError
from vector_operator.plugin.typed_objects import parsed

EXIT_PROBLEM = 1


def _connect(args: argparse.Namespace) -> Cluster:
    return Cluster.connect(args.kubeconfig, args.context, args.namespace)


def _status(args: argparse.Namespace) -> int:
    cluster = _connect(args)
    frames = 0
    while True:
        errors: list[str] = []
        items = [
            *cluster.items("VectorCollection", args.all_namespaces),
            *cluster.items("MigrationPlan", args.all_namespaces),
        ]
        rows = [status_view.row_of(item, errors) for item in items]
        rows.sort(key=lambda row: (row.namespace, row.kind != "VectorCollection", row.name))
        now = datetime.datetime.now(datetime.UTC)
        if args.watch:
            print(f"--- {now:%Y-%m-%d %H:%M:%S} UTC")
        print(status_view.render(rows, args.all_namespaces, now), end="", flush=True)
        for error in errors:
            print(f"warning: {error}", file=sys.stderr)
        frames += 1
        if not args.watch or (args.frames and frames >= args.frames):
            return 0
        time.sleep(args.interval)


def _action(args: argparse.Namespace) -> int:
    cluster = _connect(args)
    item = cluster.get("MigrationPlan", args.plan)
    spec = parsed(MigrationPlanSpec, item, "spec")
    status = parsed(MigrationPlanStatus, item, "status")
    change = actions.decide(args.command, args.plan, spec, status)
    if change.status is not None:
        cluster.patch("MigrationPlan", args.plan, change.status, status=True)
    if change.spec is not None:
        cluster.patch("MigrationPlan", args.plan, change.spec)
    print(change.message)
    return 0


def _history(args: argparse.Namespace) -> int:
    cluster = _connect(args)
    entries = history_view.entries(
        cluster.items("MigrationPlan", args.all_namespaces),
        cluster.items("RollbackPolicy", args.all_namespaces),
        args.plan,
        cluster.items("VectorCollection", args.all_namespaces),
    )
    if not entries:
        print("no cutover, re-index or rollback recorded")
    for entry in entries:
        where = f"{entry.namespace}/" if args.all_namespaces else ""
        print(f"{entry.time:%Y-%m-%d %H:%M:%S}  {entry.what:<8}  {where}{entry.plan}  {entry.detail}")
    return 0


def _tuning(args: argparse.Namespace) -> int:
    cluster = _connect(args)
    item = cluster.get("VectorCollection", args.collection)
    status = parsed(VectorCollectionStatus, item, "status")
    print(tuning_view.render(args.collection, status.tuning), end="")
    return 0


def _report(args: argparse.Namespace) -> int:
    from vector_operator.plugin import report  # matplotlib: loaded only for a report

    cluster = _connect(args)
    item = cluster.get("MigrationPlan", args.plan)
    spec = parsed(MigrationPlanSpec, item, "spec")
    status = parsed(MigrationPlanStatus, item, "status")
    rows = cluster.history(args.plan)
    if not rows:
        raise PluginError(f"{args.plan} has no finished batch recorded yet: nothing to draw")
    try:
        print(report.write_report(Path(args.output), args.plan, spec, status, rows))
    except (ValueError, OSError) as error:
        raise PluginError(str(error)) from None
    return 0


def _lint(args: argparse.Namespace) -> int:
    from vector_operator.plugin import lint  # the CRDs and CEL: loaded only to lint

    problems = 0
    for name in args.files:
        try:
            documents = [d for d in yaml.safe_load_all(Path(name).read_text()) if isinstance(d, dict)]
        except (OSError, yaml.YAMLError) as error:
            raise PluginError(f"{name}: {error}") from None
        for document in documents:
            what = f"{document.get('kind', '?')} {(document.get('metadata') or {}).get('name', '?')}"
            for problem in lint.lint(document):
                print(f"{name}: {what}: {problem}")
                problems += 1
    print(
        f"{problems} problem(s) in {len(args.files)} file(s)"
        if problems
        else f"{len(args.files)} file(s) valid"
    )
    return EXIT_PROBLEM if problems else 0


def _connection_flags(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--kubeconfig", default=default, help="the kubeconfig to use (default: $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument("--context", default=default, help="the kubeconfig context to use")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl vector", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _connection_flags(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def scoped(name: str, help_text: str, all_namespaces: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _connection_flags(sub, argparse.SUPPRESS)  # also after the command, as kubectl takes them
        sub.add_argument("-n", "--namespace", help="the namespace (default: the context's)")
        if all_namespaces:
            sub.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
        return sub

    status = scoped(
        "status", "collections and plans in one table: phase, progress, rate, ETA, coherence", True
    )
    status.add_argument("--watch", "-w", action="store_true", help="refresh until interrupted")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (--watch)")
    status.add_argument("--frames", type=int, default=0, help="with --watch, stop after this many tables")
    texts = {
        "approve": "approve a plan waiting in Planning (approval: Manual)",
        "promote": "approve the cutover of a validated plan (cutover: Manual)",
        "pause": "pause a running plan: no new Jobs, running ones finish",
        "resume": "resume a paused plan (also a RollbackPolicy's pause)",
        "abort": "stop a running plan for good: Jobs stop, the collection it filled is dropped",
        "retry": "run a Failed plan's failed batches again",
        "rollback": "point the alias back at the collection a Succeeded plan replaced",
    }
    for name in actions.ACTIONS:
        scoped(name, texts[name]).add_argument("plan", help="the MigrationPlan")
    history = scoped("history", "cutovers, re-indexes and rollbacks, newest first", True)
    history.add_argument("plan", nargs="?", help="only this MigrationPlan (or VectorCollection's re-indexes)")
    tuning = scoped("tuning", "a collection's latest tuning study: current vs best side by side, every trial")
    tuning.add_argument("collection", help="the VectorCollection")
    report_parser = scoped("report", "draw a plan's throughput, encode time and coherence per batch")
    report_parser.add_argument("plan", help="the MigrationPlan")
    report_parser.add_argument("-o", "--output", required=True, help="FILE.png or FILE.html")
    lint_parser = commands.add_parser(
        "lint", help="validate manifests offline, with the API server's messages"
    )
    lint_parser.add_argument("files", nargs="+", help="YAML files (several documents each)")
    return parser


HANDLERS: dict[str, Any] = {
    "status": _status,
    "history": _history,
    "tuning": _tuning,
    "report": _report,
    "lint": _lint,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.all_namespaces = getattr(args, "all_namespaces", False)
    handler = HANDLERS.get(args.command, _action)
    try:
        code: int = handler(args)
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
