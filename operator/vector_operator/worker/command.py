"""`vector-operator worker`: run one embedding batch inside a Job pod.

It reads its assignment (``$VO_ASSIGNMENT`` or ``--assignment FILE``), runs it, writes the result
document to ``$TERMINATION_MESSAGE_PATH`` (default ``/dev/termination-log``) and prints it as the
last line on stdout, and exits with a code a Job's ``podFailurePolicy`` can act on:

- 0: the batch succeeded;
- 1: it failed in a way a retry may fix (source or Milvus unreachable, an unexpected error);
- 2: it failed in a way only a change to the spec fixes (invalid assignment, model not available
  offline, collection or source not as described): retrying is pointless;
- 143: it was terminated (SIGTERM), e.g. by the Job's deadline or its deletion.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vector_operator.contract.assignment import InvalidAssignment, WorkerAssignment, load_assignment
from vector_operator.contract.result import Reason, Status, WorkerResult
from vector_operator.worker.process_entry import prepare_process, run_until_sigterm

EXIT_SUCCEEDED = 0
EXIT_RETRYABLE = 1
EXIT_PERMANENT = 2
EXIT_TERMINATED = 143
TERMINATION_MESSAGE_ENV = "TERMINATION_MESSAGE_PATH"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TERMINATION_UNWIND_S = 2.0
"""How long the batch may take to stop after SIGTERM before the result is written regardless."""

if TYPE_CHECKING:
    from vector_operator.worker.batch_run import BatchRun

log = logging.getLogger("vector_operator.worker")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assignment",
        type=Path,
        metavar="FILE",
        help="the assignment as a JSON file (default: the JSON in $VO_ASSIGNMENT)",
    )


def _classify(error: BaseException) -> tuple[Reason, int]:
    from vector_operator.sources import SourceMisconfigured, SourceUnavailable
    from vector_operator.worker.batch_run import DimensionMismatch
    from vector_operator.worker.milvus_collection import CollectionMismatch, MilvusUnavailable
    from vector_operator.worker.model_loading import ModelNotAvailable
    from vector_operator.worker.text_building import InvalidTemplate

    permanent: Kinds = [
        (InvalidAssignment, Reason.INVALID_ASSIGNMENT),
        (InvalidTemplate, Reason.INVALID_ASSIGNMENT),
        (ModelNotAvailable, Reason.MODEL_NOT_AVAILABLE),
        (CollectionMismatch, Reason.COLLECTION_MISMATCH),
        (DimensionMismatch, Reason.COLLECTION_MISMATCH),
        (SourceMisconfigured, Reason.SOURCE_MISCONFIGURED),
    ]
    retryable: Kinds = [
        (SourceUnavailable, Reason.SOURCE_UNAVAILABLE),
        (MilvusUnavailable, Reason.MILVUS_UNAVAILABLE),
    ]
    return classify(error, permanent, retryable)


Kinds = list[tuple[type[BaseException], Reason]]


def classify(error: BaseException, permanent: Kinds, retryable: Kinds) -> tuple[Reason, int]:
    """The reason and exit code of ``error``: the first of its kinds among ``permanent`` (exit 2),
    then ``retryable`` (exit 1); anything else is an internal error, which a retry may fix."""
    for kind, reason in permanent:
        if isinstance(error, kind):
            return reason, EXIT_PERMANENT
    for kind, reason in retryable:
        if isinstance(error, kind):
            return reason, EXIT_RETRYABLE
    return Reason.INTERNAL_ERROR, EXIT_RETRYABLE


class TerminationResult(Protocol):
    def to_termination_message(self) -> str: ...


def write_result(result: TerminationResult, environ: Mapping[str, str]) -> None:
    """Writes ``result`` to the pod's termination message and prints it as the last line."""
    message = result.to_termination_message()
    path = Path(environ.get(TERMINATION_MESSAGE_ENV) or DEFAULT_TERMINATION_MESSAGE_PATH)
    try:
        path.write_text(message, encoding="utf-8")
    except OSError as error:
        log.warning("cannot write the result to %s: %s", path, error.strerror)
    print(message, flush=True)


def main(assignment_file: Path | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Runs the worker; returns the process exit code."""
    environ = os.environ if environ is None else environ
    prepare_process(log, environ)
    try:
        assignment = load_assignment(assignment_file, environ)
    except InvalidAssignment as error:
        log.error("%s", error)
        write_result(
            WorkerResult(status=Status.FAILED, reason=Reason.INVALID_ASSIGNMENT, message=str(error)), environ
        )
        return EXIT_PERMANENT
    return _run(assignment, environ)


def _run(assignment: WorkerAssignment, environ: Mapping[str, str]) -> int:
    """Runs the batch on a thread of its own while this (main) thread waits for it or for SIGTERM.
    Unwinding the batch's stages can take long (a thread inside a long tokenizer or model call
    cannot be interrupted), so the result does not wait for it: it is written within
    TERMINATION_UNWIND_S of the signal, well inside any pod's grace period, with what was done."""
    from vector_operator.worker.batch_run import BatchRun
    from vector_operator.worker.redaction import Redactor, secret_values

    redact = Redactor(secret_values(assignment, environ))
    redact.install(log)
    stop = threading.Event()
    run = BatchRun(assignment, environ, stop=stop, measure_startup=True)
    outcome: list[WorkerResult | BaseException] = []

    def execute() -> None:
        try:
            outcome.append(run.execute())
        except BaseException as error:  # handed to the main thread
            outcome.append(error)

    batch, terminated = run_until_sigterm(execute, "worker-batch")
    if terminated and not (outcome and isinstance(outcome[0], WorkerResult)):
        log.warning("terminated (SIGTERM): stopping and writing the result")
        stop.set()
        batch.join(TERMINATION_UNWIND_S)
        result, code = (
            run.failed_result(Reason.TERMINATED, "terminated by SIGTERM before the end"),
            EXIT_TERMINATED,
        )
    elif isinstance(outcome[0], WorkerResult):
        result, code = outcome[0], EXIT_SUCCEEDED
    else:
        result, code = _failed(run, assignment, outcome[0])
    result.message = redact(result.message)
    result.recommendations = [redact(text) for text in result.recommendations]
    write_result(result, environ)
    return code


def _failed(run: BatchRun, assignment: WorkerAssignment, error: BaseException) -> tuple[WorkerResult, int]:
    if not isinstance(error, Exception):
        raise error
    reason, code = _classify(error)
    if reason is Reason.INTERNAL_ERROR:
        log.error("batch %s failed unexpectedly", assignment.batch.index, exc_info=error)
        message = f"{type(error).__name__}: {error}"
    else:
        log.error("batch %s failed (%s): %s", assignment.batch.index, reason, error)
        message = str(error)
    return run.failed_result(reason, message), code


def exit_process(code: int) -> None:
    """Ends the process with ``code`` at once, its output flushed, instead of finalising the
    interpreter: that takes 1.5-2.5 s after torch and the model were loaded (a Job's pod would show
    it as time between its result and its end), and after SIGTERM the batch thread may still be
    inside the model. Everything the batch opened is closed by then, and the result is written."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
