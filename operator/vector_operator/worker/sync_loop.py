"""The sync worker's passes: find what changed in the source table since the last pass, apply it
to the plan's physical collection, and record how far the collection is in sync.

A pass finds changes one way (:mod:`sync_schedule`): the keys a logical-decoding slot reports,
re-read by key; the rows whose change column reached the watermark; or, without either, a full
check (every row, and with ``deleteUnknownKeys`` every collection key the source no longer has).
A full check also runs every ``fullCheckInterval``. Rows are applied page by page
(:class:`ChangeApplier`); once the pass's writes are flushed, the slot is confirmed and the state
written into the collection property, so a pass that dies half-way is simply applied again.

A failing pass (source or Milvus unavailable, a misconfigured source, a collection that does not
match) is logged and recorded in the state where Milvus can be reached, and retried after a
back-off: the worker is a Deployment's only replica, and it never exits on its own.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from vector_operator.contract.content_hash import model_fingerprint
from vector_operator.contract.result import Reason
from vector_operator.contract.sync import SYNC_STATE_PROPERTY, SyncAssignment, SyncState, Watermark
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.pg_logical import LogicalDecodingUnavailable, SlotMissing, confirm, peek_changes
from vector_operator.sources.records import Key, milvus_key
from vector_operator.sources.sql_changes import MAX_PAGE_ROWS, ChangedRow, SqlChangeSource
from vector_operator.sources.sql_engine import Timeouts
from vector_operator.worker.batch_optimizer import BatchOptimizer
from vector_operator.worker.batch_run import DimensionMismatch
from vector_operator.worker.change_apply import ChangeApplier
from vector_operator.worker.embedding_model import EmbeddingModel
from vector_operator.worker.field_mapping import FieldMapper
from vector_operator.worker.milvus_collection import CollectionMismatch, MilvusCollection, MilvusUnavailable
from vector_operator.worker.model_loading import ModelNotAvailable
from vector_operator.worker.pass_accounting import (
    PassOutcome,
    fresh_state,
    state_after_failure,
    state_after_pass,
)
from vector_operator.worker.pipeline import Stopped, text_char_limit
from vector_operator.worker.quality import measure_quality
from vector_operator.worker.sync_schedule import ChangeFinding, backoff_s, change_finding, full_check_due
from vector_operator.worker.text_building import InvalidTemplate, TextBuilder
from vector_operator.worker.vector_checks import VectorChecker

log = logging.getLogger(__name__)

FEED_LINES = 10_000
"""Decoded lines one peek at the slot reads (whole transactions: a larger one is read whole)."""
MAX_FEED_ROUNDS = 100
"""Peeks in one pass: a pass over a slot that never runs dry ends after this many, without
claiming to be in sync, and the next pass goes on."""
ID_PAGE = 1000
"""Collection keys a full check looks up in the source at a time."""


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def failure_reason(error: BaseException) -> str:
    """The reason a failed pass records (the operator shows it beside the message)."""
    reasons: list[tuple[type[BaseException], str]] = [
        (SlotMissing, "SlotMissing"),
        (LogicalDecodingUnavailable, "LogicalDecodingUnavailable"),
        (SourceMisconfigured, Reason.SOURCE_MISCONFIGURED),
        (SourceUnavailable, Reason.SOURCE_UNAVAILABLE),
        (MilvusUnavailable, Reason.MILVUS_UNAVAILABLE),
        (CollectionMismatch, Reason.COLLECTION_MISMATCH),
        (DimensionMismatch, Reason.COLLECTION_MISMATCH),
        (InvalidTemplate, Reason.INVALID_ASSIGNMENT),
        (ModelNotAvailable, Reason.MODEL_NOT_AVAILABLE),
    ]
    for kind, reason in reasons:
        if isinstance(error, kind):
            return str(reason)
    return str(Reason.INTERNAL_ERROR)


def record_startup_failure(
    assignment: SyncAssignment, environ: Mapping[str, str], error: BaseException, redact: Callable[[str], str]
) -> None:
    """Records in the sync state why the worker cannot start (a model that is not there, a template
    that cannot work), so the operator can show it; best effort: Milvus may be unreachable too."""
    reason = failure_reason(error)
    try:
        token_env = assignment.milvus.token_env
        token = _secret(environ, token_env, "the Milvus token") if token_env else None
        collection = MilvusCollection(assignment.milvus, assignment.collection, token)
        try:
            stored = SyncState.from_property(collection.read_property(SYNC_STATE_PROPERTY))
            state = fresh_state(stored, assignment.plan.uid, assignment.sync.initial_watermark)
            failed = state_after_failure(state, reason, redact(str(error)), utc_now())
            collection.write_property(SYNC_STATE_PROPERTY, failed.to_property())
        finally:
            collection.close()
    except (MilvusUnavailable, SourceMisconfigured) as unrecorded:
        log.debug("cannot record the failure in the sync state: %s", unrecorded)


def _secret(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name)
    if not value:
        raise SourceMisconfigured(
            f"environment variable {name} ({what}) is not set: the sync worker's pod takes it from the"
            " Secret the MigrationPlan names"
        )
    return value


def _chunks(keys: Sequence[Key], size: int) -> Iterator[Sequence[Key]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


class SyncLoop:
    """Runs the passes of one sync assignment with one loaded model. :meth:`run_pass` runs exactly
    one (the tests call it); :meth:`run` runs them every interval until ``stop`` is set."""

    def __init__(
        self,
        assignment: SyncAssignment,
        environ: Mapping[str, str],
        *,
        model: EmbeddingModel,
        stop: threading.Event | None = None,
        redact: Callable[[str], str] = str,
        clock: Callable[[], datetime.datetime] = utc_now,
        timeouts: Timeouts | None = None,
    ) -> None:
        """Raises DimensionMismatch or InvalidTemplate: the assignment cannot work with this model."""
        self.assignment = assignment
        self._environ = environ
        self._model = model
        self._stop = stop or threading.Event()
        self._redact = redact
        self._clock = clock
        self._timeouts = timeouts or Timeouts()
        target = assignment.collection
        if model.dimension != target.dimension:
            raise DimensionMismatch(
                f"model {model.name} produces {model.dimension}-dimensional vectors but collection "
                f"{target.name} has dimension {target.dimension}: use a model of that dimension, or "
                "truncateDim for a Matryoshka model"
            )
        sql = assignment.source
        self._text_builder = TextBuilder(columns=sql.text_columns, template=sql.text_template)
        self._field_mapper = FieldMapper(target.scalar_fields, list(sql.fields or {}), target.primary_key)
        self._max_text_chars = text_char_limit(model.full_max_seq_length)
        bounds = assignment.encode
        self._optimizer = BatchOptimizer(
            bounds.min_batch_size, bounds.max_batch_size, bounds.target_batch_latency_ms / 1000.0
        )
        self._checker = VectorChecker(target.dimension)
        self._collection: MilvusCollection | None = None
        self._applier: ChangeApplier | None = None
        self._source: SqlChangeSource | None = None
        self._state: SyncState | None = None
        self._health_warned = False

    @property
    def state(self) -> SyncState | None:
        """The state as last read or written (None before the collection was reached)."""
        return self._state

    # -- running ------------------------------------------------------------------------------

    def run(self) -> None:
        """Runs passes every ``interval`` (from start to start) until ``stop`` is set; a failed pass
        is retried after a back-off. Never raises for a failed pass."""
        interval = self.assignment.sync.interval_s
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_pass()
                failures, wait = 0, interval - (time.monotonic() - started)
            except Stopped:
                return
            except Exception as error:  # recorded, then retried: the worker never exits on a failed pass
                if self._stop.is_set():
                    return
                failures += 1
                self.record_failure(error)
                wait = backoff_s(failures, interval)
            if self._stop.wait(max(0.0, wait)):
                return

    def close(self) -> None:
        self._close_collection()
        if self._source is not None:
            self._source.close()
            self._source = None

    def run_pass(self) -> PassOutcome:
        """One pass: finds and applies the changes, flushes, then writes the state. Raises what
        failed (the state then is as the last completed pass left it) or Stopped."""
        started_at, started = self._clock(), time.perf_counter()
        collection, applier, state = self._open_collection()
        source = self._open_source()
        settings = self.assignment.sync
        applier.reset_wrote()
        applier.start_sample(settings.coherence_sample, f"{self.assignment.plan.uid}/{state.passes}")
        outcome = PassOutcome(watermark=state.watermark)
        full_check = full_check_due(settings, state, started_at)
        unconfirmed: str | None = None
        finding = change_finding(settings)
        if finding is ChangeFinding.SLOT:
            unconfirmed, rescan = self._follow_slot(source, collection, applier, outcome)
            full_check = full_check or rescan
        elif finding is ChangeFinding.CHANGE_COLUMN:
            self._poll(source, applier, outcome)
        if full_check:
            self._full_check(source, collection, applier, outcome)
            outcome.full_check_at = self._clock()
        self._flush(collection, applier)
        outcome.coherence = self._coherence(collection, applier)
        if unconfirmed is not None:  # a feed that asked for the full check: confirmed only after it
            self._confirm(unconfirmed, outcome)
        new_state = state_after_pass(
            state, outcome, started_at=started_at, duration_s=time.perf_counter() - started, now=self._clock()
        )
        collection.write_property(SYNC_STATE_PROPERTY, new_state.to_property())
        self._state = new_state
        self._touch_health_file()
        self._log_pass(outcome, time.perf_counter() - started, full_check)
        return outcome

    def record_failure(self, error: BaseException) -> None:
        """Logs a failed pass and records it in the state, where Milvus can be reached."""
        reason = failure_reason(error)
        message = self._redact(str(error) or type(error).__name__)
        if reason == Reason.INTERNAL_ERROR:
            log.error("sync pass failed unexpectedly: %s", message, exc_info=error)
            message = f"{type(error).__name__}: {message}"
        else:
            log.warning("sync pass failed (%s): %s", reason, message)
        if isinstance(error, MilvusUnavailable):
            self._close_collection()  # connected again by the next pass
            return
        if isinstance(error, CollectionMismatch):
            self._applier = None  # checked again by the next pass
        collection = self._collection
        if collection is None:
            return
        try:
            failed = state_after_failure(
                self._state or self._stored_state(collection), reason, message, self._clock()
            )
            collection.write_property(SYNC_STATE_PROPERTY, failed.to_property())
        except MilvusUnavailable as unavailable:  # e.g. the collection does not exist
            log.debug("cannot record the failure in the state: %s", unavailable)
            return
        self._state = failed

    # -- opening ------------------------------------------------------------------------------

    def _open_collection(self) -> tuple[MilvusCollection, ChangeApplier, SyncState]:
        """The collection (checked, its state read) and the applier writing to it: connected once
        (again after Milvus failed), checked once (again after it did not match)."""
        if self._collection is None:
            assignment = self.assignment
            token_env = assignment.milvus.token_env
            token = _secret(self._environ, token_env, "the Milvus token") if token_env else None
            self._collection, self._applier = (
                MilvusCollection(assignment.milvus, assignment.collection, token),
                None,
            )
        collection = self._collection
        if self._applier is None or self._state is None:
            collection.verify()
            self._state = self._stored_state(collection)
            self._applier = self._new_applier(collection)
        return collection, self._applier, self._state

    def _stored_state(self, collection: MilvusCollection) -> SyncState:
        stored = SyncState.from_property(collection.read_property(SYNC_STATE_PROPERTY))
        return fresh_state(stored, self.assignment.plan.uid, self.assignment.sync.initial_watermark)

    def _new_applier(self, collection: MilvusCollection) -> ChangeApplier:
        target = self.assignment.collection
        return ChangeApplier(
            collection=collection,
            encoder=self._model,
            text_builder=self._text_builder,
            field_mapper=self._field_mapper,
            scalar_fields=target.scalar_fields,
            mapped_fields=list(self.assignment.source.fields or {}),
            checker=self._checker,
            optimizer=self._optimizer,
            fingerprint=model_fingerprint(self.assignment.model),
            max_text_chars=self._max_text_chars,
            primary_key_field=target.primary_key_field,
            vector_field=target.vector_field,
            stop=self._stop,
        )

    def _open_source(self) -> SqlChangeSource:
        if self._source is None:
            sql, settings = self.assignment.source, self.assignment.sync
            self._source = SqlChangeSource(
                self._source_url(),
                table=sql.table,
                primary_key=sql.primary_key,
                text_columns=self._text_builder.columns,
                fields=sql.fields or {},
                change_column=settings.change_column,
                soft_delete_column=self.assignment.soft_delete_column,
                max_text_chars=self._max_text_chars,
                timeouts=self._timeouts,
            )
        return self._source

    def _source_url(self) -> str:
        return _secret(self._environ, self.assignment.source.url_env, "the source database URL")

    def _close_collection(self) -> None:
        if self._collection is not None:
            try:
                self._collection.close()
            except Exception:  # a client that failed may fail to close too; it is dropped either way
                log.debug("closing the Milvus client failed", exc_info=True)
        self._collection = self._applier = None

    # -- finding changes ----------------------------------------------------------------------

    def _poll(self, source: SqlChangeSource, applier: ChangeApplier, outcome: PassOutcome) -> None:
        """Applies the rows whose change column is at or past the watermark, page by page; the
        watermark follows the largest change value applied."""
        since = outcome.watermark if outcome.watermark is None or outcome.watermark.kind != "lsn" else None

        def read_before(row: ChangedRow) -> bool:  # the rows at the watermark: the last pass read them
            return since is not None and Watermark.of(row.change_value) == since

        for page in source.changed_pages(since):
            outcome.counts.add(applier.apply(page, read_before=read_before))
            outcome.watermark = Watermark.of(page[-1].change_value)
            self._check_stop()

    def _follow_slot(
        self,
        source: SqlChangeSource,
        collection: MilvusCollection,
        applier: ChangeApplier,
        outcome: PassOutcome,
    ) -> tuple[str | None, bool]:
        """Applies the keys the slot reports, whole transactions at a time, confirming each read
        once it is flushed. Returns the position still to confirm and True when a feed asked for a
        full check (a TRUNCATE, a key it could not read): that one is confirmed after it."""
        slot = self.assignment.sync.slot
        assert slot is not None  # change_finding: SLOT needs one
        sql = self.assignment.source
        for _ in range(MAX_FEED_ROUNDS):
            self._check_stop()
            feed = peek_changes(
                self._source_url(), slot, sql.table, sql.primary_key, FEED_LINES, self._timeouts
            )
            if feed.upto_lsn is None:
                return None, False
            keys = [key for key in (milvus_key(change.key) for change in feed.changes) if key is not None]
            for chunk in _chunks(keys, MAX_PAGE_ROWS):
                rows = source.rows_by_keys(chunk)
                found = {applier.collection_key(row.row.key) for row in rows if row.row.key is not None}
                missing = [
                    key for key in map(applier.collection_key, chunk) if key is not None and key not in found
                ]
                outcome.counts.add(applier.apply(rows, missing))
            if feed.truncated:
                return feed.upto_lsn, True
            self._flush(collection, applier)
            self._confirm(feed.upto_lsn, outcome)
        outcome.drained = False
        return None, False

    def _confirm(self, lsn: str, outcome: PassOutcome) -> None:
        slot = self.assignment.sync.slot
        assert slot is not None
        confirm(self._source_url(), slot, lsn, self._timeouts)
        outcome.watermark = Watermark(kind="lsn", value=lsn)

    def _full_check(
        self,
        source: SqlChangeSource,
        collection: MilvusCollection,
        applier: ChangeApplier,
        outcome: PassOutcome,
    ) -> None:
        """Every source row applied (unchanged ones are no-ops); then, with deleteUnknownKeys, every
        collection key the source no longer has (or has soft-deleted) deleted, a page of keys at
        a time."""
        for page in source.all_pages():  # every row was read before, by the backfill or a full check
            outcome.counts.add(applier.apply(page, read_before=lambda _: True))
            self._check_stop()
        if not self.assignment.sync.delete_unknown_keys:
            return
        for keys in collection.id_pages(ID_PAGE):
            self._check_stop()
            live = {
                applier.collection_key(row.row.key)
                for row in source.rows_by_keys(keys)
                if row.row.key is not None and not row.deleted
            }
            outcome.counts.deletes_applied += applier.delete_existing(
                [key for key in keys if key not in live]
            )

    # -- after the pass -----------------------------------------------------------------------

    def _coherence(self, collection: MilvusCollection, applier: ChangeApplier) -> tuple[float, float] | None:
        """Mean and lowest coherence of the pass's sampled re-embedded rows, as Milvus stores them
        now (flushed), against a reference encoding of their text, as a batch measures it."""
        if not applier.sample.records:
            return None
        metric = self.assignment.collection.metric_type
        stats = measure_quality(applier.sample.records, collection, self._model, metric).coherence
        return None if stats is None else (stats.mean, stats.min)

    @staticmethod
    def _flush(collection: MilvusCollection, applier: ChangeApplier) -> None:
        if applier.wrote:
            collection.flush()
            applier.reset_wrote()

    def _touch_health_file(self) -> None:
        path = self.assignment.health_file
        if path is None:
            return
        try:
            Path(path).touch()
        except OSError as error:
            if not self._health_warned:
                log.warning("cannot touch the health file %s: %s", path, error.strerror)
                self._health_warned = True

    def _log_pass(self, outcome: PassOutcome, seconds: float, full_check: bool) -> None:
        counts = outcome.counts
        if not counts.applied:
            return
        log.info(
            "sync pass %s%s: %s changes applied (%s re-embedded, %s reused), %s deletes, %s skipped in"
            " %.2f s; watermark %s",
            self._state.passes if self._state else "?", " (full check)" if full_check else "",
            counts.changes_applied, counts.reembedded, counts.reused, counts.deletes_applied,
            counts.skipped, seconds, outcome.watermark,
        )  # fmt: skip

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Stopped("the sync worker is stopping")
