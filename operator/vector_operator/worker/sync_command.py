"""`vector-operator sync`: keep a MigrationPlan's physical collection in step with its source table
(the only replica of a Deployment the plan owns).

It reads its assignment (``$VO_SYNC_ASSIGNMENT`` or ``--assignment FILE``), loads the model once,
and runs a pass every interval until SIGTERM. A failing pass is logged, recorded in the sync
state (the collection property the operator reads) and retried after a back-off: the process
does not exit on it. It exits:

- 0 after SIGTERM, once the pass in progress stopped;
- 143 after SIGTERM when the pass did not stop within a few seconds (a long model call);
- 2 when the assignment or the model cannot work (invalid assignment, model not available
  offline, a model of another dimension, a text template that cannot be used): only a change to
  the plan fixes that (recorded in the sync state too, where Milvus can be reached).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from vector_operator.contract.sync import InvalidSyncAssignment, SyncAssignment, load_sync_assignment
from vector_operator.worker.process_entry import prepare_process, run_until_sigterm
from vector_operator.worker.redaction import Redactor, secret_values_of

EXIT_STOPPED = 0
EXIT_PERMANENT = 2
EXIT_TERMINATED = 143
TERMINATION_UNWIND_S = 3.0
"""How long the pass in progress may take to stop after SIGTERM (it stops between micro-batches
and pages; a model call in progress cannot be interrupted)."""

log = logging.getLogger("vector_operator")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assignment",
        type=Path,
        metavar="FILE",
        help="the sync assignment as a JSON file (default: the JSON in $VO_SYNC_ASSIGNMENT)",
    )


def main(assignment_file: Path | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Runs the sync worker until SIGTERM; returns the process exit code."""
    environ = os.environ if environ is None else environ
    prepare_process(log, environ)  # the worker's and the sources' loggers: all pass the redactor
    try:
        assignment = load_sync_assignment(assignment_file, environ)
    except InvalidSyncAssignment as error:
        log.error("%s", error)
        return EXIT_PERMANENT
    return _run(assignment, environ)


def _run(assignment: SyncAssignment, environ: Mapping[str, str]) -> int:
    """Runs the loop on a thread of its own while this (main) thread waits for it or for SIGTERM,
    so that SIGTERM is answered within TERMINATION_UNWIND_S even inside a long model call."""
    redact = Redactor(secret_values_of([assignment.milvus.token_env, assignment.source.url_env], environ))
    redact.install(log)
    stop = threading.Event()
    exit_code: list[int] = []

    def work() -> None:
        exit_code.append(_work(assignment, environ, stop, redact))

    worker, terminated = run_until_sigterm(work, "sync-loop", on_sigterm=stop.set)
    if terminated:
        log.info("terminated (SIGTERM): stopping the sync")
        worker.join(TERMINATION_UNWIND_S)
        return EXIT_TERMINATED if worker.is_alive() else EXIT_STOPPED
    return exit_code[0] if exit_code else EXIT_PERMANENT


def _work(
    assignment: SyncAssignment, environ: Mapping[str, str], stop: threading.Event, redact: Redactor
) -> int:
    from vector_operator.worker.batch_run import DimensionMismatch
    from vector_operator.worker.embedding_model import load_embedding_model
    from vector_operator.worker.model_loading import ModelNotAvailable
    from vector_operator.worker.sync_loop import SyncLoop, record_startup_failure
    from vector_operator.worker.text_building import InvalidTemplate

    plan, table, collection = assignment.plan, assignment.source.table, assignment.collection.name
    log.info(
        "sync of plan %s/%s: table %s into %s every %.0f s",
        plan.namespace, plan.name, table, collection, assignment.sync.interval_s,
    )  # fmt: skip
    try:
        model = load_embedding_model(assignment.model)
        loop = SyncLoop(assignment, environ, model=model, stop=stop, redact=redact)
    except (ModelNotAvailable, DimensionMismatch, InvalidTemplate) as error:
        log.error("the sync cannot run: %s", redact(str(error)))
        record_startup_failure(assignment, environ, error, redact)
        return EXIT_PERMANENT
    try:
        loop.run()
    finally:
        loop.close()
    return EXIT_STOPPED
