"""`vector-operator task`: run one of a MigrationPlan's one-off tasks inside its Job pod.

- **Backup** exports the physical collection to Parquet files and a manifest
  (:mod:`~vector_operator.worker.backup_export`);
- **Inventory** counts the records of a files source (:mod:`~vector_operator.worker.files_inventory`),
  or verifies a backup before a restore writes anything (:mod:`~vector_operator.worker.backup_verify`).

It reads its task (``$VO_TASK`` or ``--assignment FILE``), runs it, writes the result document
(a TaskResult) to ``$TERMINATION_MESSAGE_PATH`` (default ``/dev/termination-log``) and prints it
as the last line on stdout, and exits with a code a Job's ``podFailurePolicy`` can act on:

- 0: the task succeeded;
- 1: it failed in a way a retry may fix (the store or Milvus unreachable, an unexpected error);
- 2: it failed in a way only a change fixes (invalid task, a source or collection not as
  described, a backup that is corrupted or does not fit the collection): retrying is pointless;
- 143: it was terminated (SIGTERM), e.g. by the Job's deadline or its deletion.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from vector_operator.contract.backup_manifest import BackupManifest
from vector_operator.contract.result import Reason, Status
from vector_operator.contract.tasks import (
    TASK_ENV,
    InvalidTask,
    TaskAssignment,
    TaskKind,
    TaskResult,
    load_task,
)
from vector_operator.worker.command import (
    EXIT_PERMANENT,
    EXIT_SUCCEEDED,
    EXIT_TERMINATED,
    Kinds,
    classify,
    write_result,
)
from vector_operator.worker.process_entry import prepare_process, run_until_sigterm
from vector_operator.worker.redaction import Redactor, secret_values_of

TERMINATION_UNWIND_S = 3.0
"""How long the task may take to stop after SIGTERM (an export stops between pages) before the
result is written regardless."""

log = logging.getLogger("vector_operator.worker")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assignment",
        type=Path,
        metavar="FILE",
        help=f"the task as a JSON file (default: the JSON in ${TASK_ENV})",
    )


def _classify(error: Exception) -> tuple[Reason, int]:
    from pymilvus import MilvusException

    from vector_operator.sources import SourceMisconfigured, SourceUnavailable
    from vector_operator.worker.backup_export import DestinationTaken
    from vector_operator.worker.backup_verify import BackupCorrupted, BackupIncompatible
    from vector_operator.worker.milvus_collection import CollectionMismatch, MilvusUnavailable

    permanent: Kinds = [
        (InvalidTask, Reason.INVALID_ASSIGNMENT),
        (DestinationTaken, Reason.INVALID_ASSIGNMENT),
        (BackupCorrupted, Reason.BACKUP_CORRUPTED),
        (BackupIncompatible, Reason.BACKUP_INCOMPATIBLE),
        (SourceMisconfigured, Reason.SOURCE_MISCONFIGURED),
        (CollectionMismatch, Reason.COLLECTION_MISMATCH),
    ]
    retryable: Kinds = [
        (SourceUnavailable, Reason.STORAGE_UNAVAILABLE),
        (OSError, Reason.STORAGE_UNAVAILABLE),
        (MilvusUnavailable, Reason.MILVUS_UNAVAILABLE),
        (MilvusException, Reason.MILVUS_UNAVAILABLE),
    ]
    return classify(error, permanent, retryable)


def _declared_kind(assignment_file: Path | None, environ: Mapping[str, str]) -> TaskKind:
    """The kind of task a document that did not validate asks for, for its result (Backup when
    it cannot be told)."""
    try:
        text = assignment_file.read_text(encoding="utf-8") if assignment_file else environ.get(TASK_ENV, "")
        raw = json.loads(text)
    except (OSError, ValueError):
        return TaskKind.BACKUP
    return TaskKind.INVENTORY if isinstance(raw, dict) and "inventory" in raw else TaskKind.BACKUP


def _failed(kind: TaskKind, reason: Reason, message: str) -> TaskResult:
    return TaskResult(
        task=kind, status=Status.FAILED, reason=reason, message=message, completed_at=datetime.now(UTC)
    )


def main(assignment_file: Path | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Runs the task; returns the process exit code."""
    environ = os.environ if environ is None else environ
    prepare_process(log, environ)
    try:
        task = load_task(assignment_file, environ)
    except InvalidTask as error:
        log.error("%s", error)
        write_result(
            _failed(_declared_kind(assignment_file, environ), Reason.INVALID_ASSIGNMENT, str(error)), environ
        )
        return EXIT_PERMANENT
    return _run(task, environ)


def secret_names(task: TaskAssignment) -> list[str | None]:
    """The environment variables holding the task's secrets: the Milvus token and the S3 keys."""
    names: list[str | None] = []
    stores = []
    if task.backup is not None:
        names.append(task.backup.milvus.token_env)
        stores.append(task.backup.destination.s3)
    if task.inventory is not None:
        stores.append(task.inventory.backup.s3 if task.inventory.backup is not None else None)
        stores.append(task.inventory.files.s3 if task.inventory.files is not None else None)
    for s3 in stores:
        if s3 is not None:
            names += [s3.access_key_env, s3.secret_key_env]
    return names


def _run(task: TaskAssignment, environ: Mapping[str, str]) -> int:
    """Runs the task on a thread of its own while this (main) thread waits for it or for SIGTERM,
    which stops an export between pages; the result is written within TERMINATION_UNWIND_S."""
    redact = Redactor(secret_values_of(secret_names(task), environ))
    redact.install(log)
    stop = threading.Event()
    outcome: list[TaskResult | BaseException] = []

    def execute() -> None:
        try:
            outcome.append(_execute(task, environ, stop))
        except BaseException as error:  # handed to the main thread
            outcome.append(error)

    worker, terminated = run_until_sigterm(execute, "task", on_sigterm=stop.set)
    if terminated and not (outcome and isinstance(outcome[0], TaskResult)):
        log.warning("terminated (SIGTERM): stopping and writing the result")
        worker.join(TERMINATION_UNWIND_S)
        result, code = (
            _failed(task.kind, Reason.TERMINATED, "terminated by SIGTERM before the end"),
            EXIT_TERMINATED,
        )
    elif isinstance(outcome[0], TaskResult):
        result, code = outcome[0], EXIT_SUCCEEDED
    else:
        error = outcome[0]
        if not isinstance(error, Exception):
            raise error
        reason, code = _classify(error)
        if reason is Reason.INTERNAL_ERROR:
            log.error("the %s task failed unexpectedly", task.kind, exc_info=error)
            message = f"{type(error).__name__}: {error}"
        else:
            log.error("the %s task failed (%s): %s", task.kind, reason, error)
            message = str(error)
        result = _failed(task.kind, reason, message)
    result.message = redact(result.message)
    write_result(result, environ)
    return code


def _execute(task: TaskAssignment, environ: Mapping[str, str], stop: threading.Event) -> TaskResult:
    """Runs the task and says what it did."""
    if task.backup is not None:
        from vector_operator.worker.backup_export import export_backup

        exported = export_backup(task.backup, task.plan.plan, environ, stop)
        manifest = exported.manifest
        done = "found already exported" if exported.reused else "exported"
        return _backup_result(
            task.kind,
            f"{manifest.rows} rows of {manifest.collection} {done} to {exported.location} in"
            f" {len(manifest.files)} files",
            manifest,
            exported.location,
            exported.bytes,
            0.0 if exported.reused else exported.seconds,
        )
    inventory = task.inventory
    assert inventory is not None  # a task is exactly one of backup and inventory
    if inventory.backup is not None:
        from vector_operator.worker.backup_verify import verify_stored_backup

        assert inventory.collection is not None  # a backup inventory names its collection
        verified = verify_stored_backup(
            inventory.backup, inventory.collection, inventory.expected_checksum, environ
        )
        manifest = verified.manifest
        log.info(
            "the backup in %s is intact: %d rows in %d files (%d bytes) verified in %.1f s",
            verified.location, manifest.rows, len(manifest.files), verified.bytes, verified.seconds,
        )  # fmt: skip
        return _backup_result(
            task.kind,
            f"the backup of {manifest.collection} in {verified.location} is intact: {manifest.rows} rows"
            f" in {len(manifest.files)} files",
            manifest,
            verified.location,
            verified.bytes,
            verified.seconds,
        )
    from vector_operator.worker.files_inventory import count_file_records

    assert inventory.files is not None  # an inventory reads exactly one of files and backup
    counted = count_file_records(inventory.files, environ)
    log.info("%s: %d records in %d files", inventory.files.path, counted.records, counted.files)
    return _succeeded(
        task.kind,
        f"{counted.records} records in {counted.files} files matching {inventory.files.path}",
        records=counted.records,
        files=counted.files,
        size=counted.bytes,
        seconds=counted.seconds,
    )


def _backup_result(
    kind: TaskKind, message: str, manifest: BackupManifest, location: str, size: int, seconds: float
) -> TaskResult:
    """A backup written or verified: its rows, files, size and checksum."""
    return _succeeded(
        kind,
        message,
        records=manifest.rows,
        files=len(manifest.files),
        size=size,
        checksum=manifest.checksum,
        location=location,
        seconds=seconds,
    )


def _succeeded(
    kind: TaskKind,
    message: str,
    *,
    records: int,
    files: int,
    size: int,
    seconds: float,
    checksum: str | None = None,
    location: str | None = None,
) -> TaskResult:
    return TaskResult(
        task=kind,
        status=Status.SUCCEEDED,
        reason=Reason.COMPLETED,
        message=message,
        records=records,
        files=files,
        bytes=size,
        checksum=checksum,
        location=location,
        records_per_second=round(records / seconds, 1) if seconds > 0 else 0.0,
        completed_at=datetime.now(UTC),
    )
