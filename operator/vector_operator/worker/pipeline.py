"""Reading, encoding and writing, overlapped.

Three stages, two bounded queues:

    reader thread ──windows──> encoder (calling thread) ──micro-batches──> writer thread

- The reader pages through the source, builds each record's text and scalar fields (bad rows
  are counted by reason here), hashes the text (when the collection keeps content hashes), counts
  tokens with its own tokenizer copy, and hands over windows of records.
- The encoder sorts each window by token count (so a micro-batch pads little), cuts it into
  micro-batches of the size the optimizer picks, encodes, and checks every vector: rejected
  vectors are counted and never written.
- The writer upserts accepted records in requests of bounded size and offers them to the quality
  sample.

While the model encodes (torch releases the GIL), the reader prepares the next window and the
writer sends the previous vectors. Memory is bounded by the queue sizes, not by the key range.
The first error in any stage stops all three and is raised from :meth:`Pipeline.run`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from vector_operator.contract.content_hash import CONTENT_HASH_FIELD, content_hash
from vector_operator.contract.result import SkipReason
from vector_operator.sources import RecordSource
from vector_operator.sources.records import Key, SourceRow
from vector_operator.worker.batch_optimizer import BatchOptimizer
from vector_operator.worker.field_mapping import FieldMapper
from vector_operator.worker.latency_stats import LatencyStats
from vector_operator.worker.quality import QualitySample
from vector_operator.worker.records import PreparedRecord
from vector_operator.worker.text_building import TextBuilder
from vector_operator.worker.vector_checks import VectorChecker

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

FIRST_WINDOW = 256
MIN_WINDOW = 2048
MAX_WINDOW = 16384
READ_QUEUE_WINDOWS = 2
WRITE_QUEUE_BATCHES = 16
"""Encoded micro-batches waiting for the writer: with maxBatchSize 1024 and 384 dimensions at most
25 MB, and the writer, far faster than the model, keeps it near empty."""
MAX_UPSERT_ROWS = 1000
MAX_UPSERT_BYTES = 16 << 20
POLL_S = 0.1
JOIN_TIMEOUT_S = 30.0
CHARS_PER_TOKEN_BOUND = 16
"""A token covers at least one character, so cutting a text at this many characters per token of
the model's window never changes what the model reads; it keeps a 10 MB row from costing minutes
of tokenizing (the record counts as truncated)."""
MIN_TEXT_CHARS = 8192


def text_char_limit(model_window_tokens: int) -> int:
    """Characters of a text kept for a model that reads ``model_window_tokens`` tokens."""
    return max(MIN_TEXT_CHARS, model_window_tokens * CHARS_PER_TOKEN_BOUND)


class Encoder(Protocol):
    max_seq_length: int

    def encode(self, texts: Sequence[str]) -> FloatArray: ...


class TokenCounting(Protocol):
    def count(self, texts: Sequence[str]) -> list[int]: ...


class Writer(Protocol):
    def upsert(self, rows: list[dict[str, Any]]) -> int: ...


class Stopped(Exception):
    """Another stage failed or the worker is shutting down."""


@dataclass
class PipelineCounts:
    read: int = 0
    embedded: int = 0
    upserted: int = 0
    truncated: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    norm_outliers: int = 0
    duplicate_vectors: int = 0


@dataclass
class PipelineTimings:
    """Seconds each stage was busy, and how long the encoder waited for the others."""

    read_s: float = 0.0
    encode_s: float = 0.0
    write_s: float = 0.0
    encode_idle_s: float = 0.0
    batch_latency: LatencyStats = field(default_factory=LatencyStats)


@dataclass
class EncodedBatch:
    records: list[PreparedRecord]
    vectors: FloatArray


_END = object()


def _hash_field(record: PreparedRecord) -> dict[str, int]:
    return {} if record.content_hash is None else {CONTENT_HASH_FIELD: record.content_hash}


def window_size(max_batch_size: int) -> int:
    """Records per reading window: room for several of the largest micro-batches, so that
    sorting by length pays off, within a bounded memory."""
    return max(MIN_WINDOW, min(MAX_WINDOW, 4 * max_batch_size))


class Pipeline:
    """Runs one key range through read → encode → check → write."""

    def __init__(
        self,
        *,
        source: RecordSource,
        text_builder: TextBuilder,
        field_mapper: FieldMapper,
        token_counter: TokenCounting,
        encoder: Encoder,
        writer: Writer,
        optimizer: BatchOptimizer,
        checker: VectorChecker,
        sample: QualitySample,
        primary_key_field: str,
        vector_field: str,
        max_text_chars: int,
        stop: threading.Event | None = None,
        content_fingerprint: bytes | None = None,
    ) -> None:
        """``content_fingerprint``: the model's (contract.content_hash.model_fingerprint); when
        given, every record is written with the content hash of its text, so that a sync can tell
        whether its vector is still current. None: the collection keeps no hash."""
        self._source = source
        self._text_builder = text_builder
        self._field_mapper = field_mapper
        self._token_counter = token_counter
        self._encoder = encoder
        self._writer = writer
        self.optimizer = optimizer
        self._checker = checker
        self.sample = sample
        self._pk = primary_key_field
        self._vector = vector_field
        self._max_text_chars = max_text_chars
        self._fingerprint = content_fingerprint
        self._stop = stop or threading.Event()
        self._window = window_size(optimizer.max_size)
        dimension = max(1, checker.dimension)
        self._upsert_rows = max(1, min(MAX_UPSERT_ROWS, MAX_UPSERT_BYTES // (4 * dimension)))
        self._windows: queue.Queue[object] = queue.Queue(maxsize=READ_QUEUE_WINDOWS)
        self._batches: queue.Queue[object] = queue.Queue(maxsize=WRITE_QUEUE_BATCHES)
        self._errors: list[BaseException] = []
        # Each stage owns its counters (no locks); run() merges them.
        self._reader_counts = PipelineCounts()
        self._encoder_counts = PipelineCounts()
        self._writer_counts = PipelineCounts()
        self.timings = PipelineTimings()

    # -- plumbing ---------------------------------------------------------------------------

    def _put(self, channel: queue.Queue[object], item: object) -> None:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                channel.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def _get(self, channel: queue.Queue[object], producer: threading.Thread | None) -> object:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                return channel.get(timeout=POLL_S)
            except queue.Empty:
                if producer is not None and not producer.is_alive() and channel.empty():
                    raise Stopped from None

    def _stage(self, name: str, body: Callable[[], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                body()
            except Stopped:
                pass
            except BaseException as error:  # handed to the calling thread, which raises it
                log.debug("%s stage failed", name, exc_info=True)
                self._errors.append(error)
                self._stop.set()

        return threading.Thread(target=guarded, name=f"worker-{name}", daemon=True)

    # -- stages -----------------------------------------------------------------------------

    def _prepare(self, rows: Iterable[SourceRow]) -> Iterator[PreparedRecord]:
        counts = self._reader_counts
        for row in rows:
            counts.read += 1
            if row.key is None:
                counts.skipped[SkipReason.NULL_KEY] += 1
                continue
            key = self._field_mapper.key(row.key)
            if isinstance(key, SkipReason):
                counts.skipped[key] += 1
                continue
            text = self._text_builder.build(row.text_values)
            if isinstance(text, SkipReason):
                counts.skipped[text] += 1
                continue
            fields = self._field_mapper.map(row.field_values)
            if isinstance(fields, SkipReason):
                counts.skipped[fields] += 1
                continue
            text = text[: self._max_text_chars]  # exactly what the model reads, and what is hashed
            hashed = content_hash(text, self._fingerprint) if self._fingerprint is not None else None
            yield PreparedRecord(key=key, text=text, fields=fields, content_hash=hashed)

    def _hand_over(self, window: list[PreparedRecord]) -> None:
        started = time.perf_counter()
        for record, tokens in zip(window, self._token_counter.count([r.text for r in window]), strict=True):
            record.token_count = tokens
            if tokens > self._encoder.max_seq_length:
                self._reader_counts.truncated += 1
        self.timings.read_s += time.perf_counter() - started
        self._put(self._windows, window)

    def _read(self) -> None:
        window: list[PreparedRecord] = []
        target = min(FIRST_WINDOW, self._window)  # a small first window gets the model going sooner
        pages = self._source.pages()
        started = time.perf_counter()
        for page in pages:
            window.extend(self._prepare(page))
            self.timings.read_s += time.perf_counter() - started
            if len(window) >= target:
                self._hand_over(window)
                window, target = [], self._window
            started = time.perf_counter()
        if window:
            self._hand_over(window)
        self._put(self._windows, _END)

    def _encode_window(self, window: list[PreparedRecord], last: bool) -> list[PreparedRecord]:
        """Encodes ``window`` longest first; returns the records too few for a full micro-batch plus
        a minimal one, to go with the next window (unless this is the ``last`` one). So no
        micro-batch falls below the minimum unless the whole key range does."""
        counts = self._encoder_counts
        ordered = sorted(window, key=lambda record: record.token_count, reverse=True)
        position = 0
        while position < len(ordered):
            remaining, size = len(ordered) - position, self.optimizer.size
            minimum, maximum = self.optimizer.min_size, self.optimizer.max_size
            if not last and remaining < size + minimum:
                return ordered[position:]
            if last and 0 < remaining - size < minimum:  # no tail below the minimum: take it along
                size = remaining if remaining <= maximum else max(minimum, remaining - minimum)
            batch = ordered[position : position + size]
            position += len(batch)
            texts = [record.text for record in batch]
            started = time.perf_counter()
            vectors = self._encoder.encode(texts)
            latency = time.perf_counter() - started
            self.timings.encode_s += latency
            self.timings.batch_latency.record(latency)
            self.optimizer.observe(len(batch), latency)
            counts.embedded += len(batch)
            checked = self._checker.check(vectors, texts)
            for _, reason in checked.rejected:
                counts.skipped[reason] += 1
            counts.norm_outliers += checked.norm_outliers
            counts.duplicate_vectors += checked.duplicate_vectors
            accepted = [record for record, keep in zip(batch, checked.accepted, strict=True) if keep]
            if accepted:
                waited = time.perf_counter()
                self._put(self._batches, EncodedBatch(accepted, vectors[checked.accepted]))
                self.timings.encode_idle_s += time.perf_counter() - waited
        return []

    def _encode(self, reader: threading.Thread) -> None:
        carried: list[PreparedRecord] = []
        while True:
            waited = time.perf_counter()
            window = self._get(self._windows, reader)
            self.timings.encode_idle_s += time.perf_counter() - waited
            if window is _END:
                break
            assert isinstance(window, list)
            carried = self._encode_window(carried + window, last=False)
        self._encode_window(carried, last=True)
        self._put(self._batches, _END)

    def _flush_rows(self, pending: dict[Key, tuple[PreparedRecord, FloatArray]]) -> None:
        rows = [
            {self._pk: key, self._vector: vector, **record.fields, **_hash_field(record)}
            for key, (record, vector) in pending.items()
        ]
        started = time.perf_counter()
        written = self._writer.upsert(rows)
        self.timings.write_s += time.perf_counter() - started
        self._writer_counts.upserted += written
        for record, _ in pending.values():
            self.sample.offer(record.key, record.text)
        pending.clear()

    def _write(self) -> None:
        pending: dict[Key, tuple[PreparedRecord, FloatArray]] = {}
        while True:
            item = self._get(self._batches, None)
            if item is _END:
                break
            assert isinstance(item, EncodedBatch)
            for record, vector in zip(item.records, item.vectors, strict=True):
                if record.key in pending:  # the same id twice in one request: the last one wins
                    self._writer_counts.skipped[SkipReason.DUPLICATE_KEY] += 1
                pending[record.key] = (record, vector)
                if len(pending) >= self._upsert_rows:
                    self._flush_rows(pending)
        if pending:
            self._flush_rows(pending)

    # -- running ----------------------------------------------------------------------------

    def run(self) -> PipelineCounts:
        """Runs to the end of the key range; returns the merged counts. Raises the first error of
        any stage, after stopping the others."""
        reader = self._stage("reader", self._read)
        writer = self._stage("writer", self._write)
        reader.start()
        writer.start()
        try:
            self._encode(reader)
        except Stopped:
            pass  # another stage failed: its error is raised below
        except BaseException:
            self._stop.set()
            for thread in (reader, writer):
                thread.join(JOIN_TIMEOUT_S)
            raise
        while writer.is_alive():  # the writer drains what the encoder handed over, then ends
            writer.join(POLL_S)
        reader.join(JOIN_TIMEOUT_S)
        if self._errors:
            self._stop.set()
            raise self._errors[0]
        if self._stop.is_set():
            raise Stopped("the pipeline was stopped")
        return self.counts_so_far()

    def counts_so_far(self) -> PipelineCounts:
        """The counts of all stages, merged (final once run() has returned)."""
        reader, encoder, writer = self._reader_counts, self._encoder_counts, self._writer_counts
        return PipelineCounts(
            read=reader.read,
            embedded=encoder.embedded,
            upserted=writer.upserted,
            truncated=reader.truncated,
            skipped=reader.skipped + encoder.skipped + writer.skipped,
            norm_outliers=encoder.norm_outliers,
            duplicate_vectors=encoder.duplicate_vectors,
        )
