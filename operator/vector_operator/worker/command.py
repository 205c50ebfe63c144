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
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from vector_operator.worker.assignment import InvalidAssignment, WorkerAssignment, load_assignment
from vector_operator.worker.result import Reason, Status, WorkerResult

EXIT_SUCCEEDED = 0
EXIT_RETRYABLE = 1
EXIT_PERMANENT = 2
EXIT_TERMINATED = 143
TERMINATION_MESSAGE_ENV = "TERMINATION_MESSAGE_PATH"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
LOG_LEVEL_ENV = "VO_LOG_LEVEL"
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

log = logging.getLogger("vector_operator.worker")


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException, so that no ``except Exception`` swallows it)."""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assignment",
        type=Path,
        metavar="FILE",
        help="the assignment as a JSON file (default: the JSON in $VO_ASSIGNMENT)",
    )


def _classify(error: BaseException) -> tuple[Reason, int]:
    from vector_operator.worker.batch_run import DimensionMismatch
    from vector_operator.worker.milvus_collection import CollectionMismatch, MilvusUnavailable
    from vector_operator.worker.model_loading import ModelNotAvailable
    from vector_operator.worker.sources import SourceMisconfigured, SourceUnavailable
    from vector_operator.worker.text_building import InvalidTemplate

    permanent: list[tuple[type[BaseException], Reason]] = [
        (InvalidAssignment, Reason.INVALID_ASSIGNMENT),
        (InvalidTemplate, Reason.INVALID_ASSIGNMENT),
        (ModelNotAvailable, Reason.MODEL_NOT_AVAILABLE),
        (CollectionMismatch, Reason.COLLECTION_MISMATCH),
        (DimensionMismatch, Reason.COLLECTION_MISMATCH),
        (SourceMisconfigured, Reason.SOURCE_MISCONFIGURED),
    ]
    retryable: list[tuple[type[BaseException], Reason]] = [
        (SourceUnavailable, Reason.SOURCE_UNAVAILABLE),
        (MilvusUnavailable, Reason.MILVUS_UNAVAILABLE),
    ]
    for kind, reason in permanent:
        if isinstance(error, kind):
            return reason, EXIT_PERMANENT
    for kind, reason in retryable:
        if isinstance(error, kind):
            return reason, EXIT_RETRYABLE
    return Reason.INTERNAL_ERROR, EXIT_RETRYABLE


def _configure_logging(environ: Mapping[str, str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(environ.get(LOG_LEVEL_ENV, "INFO").upper())
    log.propagate = False


def _write_result(result: WorkerResult, environ: Mapping[str, str]) -> None:
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
    for name, value in OFFLINE_ENVIRONMENT.items():  # read by the Hugging Face libraries on import
        os.environ.setdefault(name, value)
    _configure_logging(environ)
    try:
        assignment = load_assignment(assignment_file, environ)
    except InvalidAssignment as error:
        log.error("%s", error)
        _write_result(
            WorkerResult(status=Status.FAILED, reason=Reason.INVALID_ASSIGNMENT, message=str(error)), environ
        )
        return EXIT_PERMANENT
    return _run(assignment, environ)


def _run(assignment: WorkerAssignment, environ: Mapping[str, str]) -> int:
    from vector_operator.worker.batch_run import BatchRun
    from vector_operator.worker.redaction import Redactor, secret_values

    redact = Redactor(secret_values(assignment, environ))
    redact.install(log)
    stop = threading.Event()

    def on_sigterm(_signal: int, _frame: FrameType | None) -> None:
        stop.set()
        raise Terminated

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    run = BatchRun(assignment, environ, stop=stop)
    try:
        result, code = run.execute(), EXIT_SUCCEEDED
    except Terminated:
        log.warning("terminated (SIGTERM): stopping")
        result, code = (
            run.failed_result(Reason.TERMINATED, "terminated by SIGTERM before the end"),
            EXIT_TERMINATED,
        )
    except Exception as error:
        reason, code = _classify(error)
        if reason is Reason.INTERNAL_ERROR:
            log.exception("batch %s failed unexpectedly", assignment.batch.index)
            message = f"{type(error).__name__}: {error}"
        else:
            log.error("batch %s failed (%s): %s", assignment.batch.index, reason, error)
            message = str(error)
        result = run.failed_result(reason, message)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    result.message = redact(result.message)
    result.recommendations = [redact(text) for text in result.recommendations]
    _write_result(result, environ)
    return code
