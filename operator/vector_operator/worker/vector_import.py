"""One batch of files that carry their vectors ("adopting existing embeddings"): read, screen,
upsert, flush, measure quality, and account for it all in a result. Nothing is embedded.

The vectors are written exactly as the files hold them (float32, bit for bit), after the checks
every vector passes (:mod:`.vector_screening`). When the records have a text (textFields or
textTemplate beside vectorField), the declared model is loaded, before the first record is read so
that a missing model or one of another dimension fails the batch at once, but it encodes only the
quality sample: coherence compares each sampled vector as Milvus stores it with the model's
encoding of its text, so vectors made by another model (or with other settings) score low and the
plan's coherence gate stops the swap. Without a text there is nothing to compare with: quality is
None.

Imported records carry no content hash of their own (nothing shows that the declared model made
their vectors, only a sample is checked), unless ``keep_content_hash`` passes the files' hashes
through: a restore of the operator's own backup writes back what it saved.

Reading and writing take turns on one thread: with no model to wait for, a batch is bound by the
source and Milvus, and a page is written before the next is read, so memory holds one page and
one upsert request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from vector_operator.contract.assignment import FileSource, WorkerAssignment
from vector_operator.contract.content_hash import CONTENT_HASH_FIELD
from vector_operator.contract.result import (
    BatchSizes,
    QualityResult,
    Reason,
    RecordCounts,
    SkipReason,
    Status,
    Timings,
    WorkerResult,
)
from vector_operator.sources.files import FileRecordsSource
from vector_operator.worker.batch_run import (
    batch_result,
    checked_model,
    model_report,
    required_env,
    sample_seed,
)
from vector_operator.worker.embedding_model import EmbeddingModel
from vector_operator.worker.field_mapping import FieldMapper
from vector_operator.worker.milvus_collection import MilvusCollection
from vector_operator.worker.pipeline import MAX_UPSERT_BYTES, MAX_UPSERT_ROWS, Stopped, text_char_limit
from vector_operator.worker.process_start import seconds_since_start
from vector_operator.worker.quality import QualitySample, measure_quality
from vector_operator.worker.recommendations import (
    HEALTHY_COHERENCE,
    MAX_RECOMMENDATIONS,
    BatchFacts,
    recommend,
)
from vector_operator.worker.text_building import TextBuilder
from vector_operator.worker.vector_checks import VectorChecker
from vector_operator.worker.vector_screening import ImportedRecord, ImportScreen, ScreenCounts

log = logging.getLogger(__name__)


def upsert_rows_per_request(dimension: int) -> int:
    """Records per upsert request: at most MAX_UPSERT_ROWS and about MAX_UPSERT_BYTES of vectors."""
    return max(1, min(MAX_UPSERT_ROWS, MAX_UPSERT_BYTES // (4 * max(1, dimension))))


class ImportRun:
    """Runs one assignment whose files carry their vectors. :meth:`execute` returns the result or
    raises; after a failure, :meth:`failed_result` reports what was done until then."""

    def __init__(
        self,
        assignment: WorkerAssignment,
        environ: Mapping[str, str],
        *,
        model: EmbeddingModel | None = None,
        stop: threading.Event | None = None,
        measure_startup: bool = False,
        keep_content_hash: bool = False,
    ) -> None:
        """``model``: the declared model, already loaded (else it is loaded when the records have
        a text). ``measure_startup``: this process was started for this batch, so its start-up is
        counted from the process's start. ``keep_content_hash``: write the files' content_hash
        column (a backup's) instead of none."""
        files = assignment.source.files
        if files is None or files.vector_field is None:
            raise ValueError("ImportRun needs a files source with vectorField")
        self.assignment = assignment
        self._files: FileSource = files
        self._environ = environ
        self._model = model
        self._model_used = False
        self._stop = stop or threading.Event()
        self._measure_startup = measure_startup
        self._keep_content_hash = keep_content_hash
        self._started = time.perf_counter()
        self._timings = Timings()
        self._read_s = 0.0
        self._write_s = 0.0
        self._screen: ImportScreen | None = None
        self._upserted = 0

    # -- running ----------------------------------------------------------------------------

    def _text_builder(self) -> TextBuilder | None:
        files = self._files
        if files.text_fields is None and files.text_template is None:
            return None
        return TextBuilder(columns=files.text_fields, template=files.text_template)

    def execute(self) -> WorkerResult:
        assignment, files = self.assignment, self._files
        builder = self._text_builder()
        model: EmbeddingModel | None = None
        if builder is not None:  # first: a model that cannot serve the quality check fails at once
            model = checked_model(
                assignment, self._model, self._timings, measure_startup=self._measure_startup
            )
            self._model, self._model_used = model, True
        elif self._measure_startup:
            self._timings.startup_ms = _ms(seconds_since_start() or 0.0)
        self._screen = ImportScreen(
            field_mapper=FieldMapper(
                assignment.collection.scalar_fields,
                list(assignment.source.fields),
                assignment.collection.primary_key,
            ),
            checker=VectorChecker(assignment.collection.dimension),
            normalize=assignment.model.normalize,
            text_builder=builder,
            max_text_chars=text_char_limit(model.full_max_seq_length) if model is not None else None,
        )
        source = FileRecordsSource(
            file_format=files.format,
            path=files.path,
            id_field=files.id_field,
            text_fields=builder.columns if builder is not None else (),
            fields=files.fields or {},
            key_range=assignment.key_range,
            vector_field=files.vector_field,
            s3=files.s3,
            environ=self._environ,
            keep_content_hash=self._keep_content_hash,
        )
        token_env = assignment.milvus.token_env
        token = required_env(self._environ, token_env, "the Milvus token") if token_env else None
        collection = MilvusCollection(assignment.milvus, assignment.collection, token)
        try:
            collection.verify()
            log.info(
                "batch %s of plan %s: importing vectors from %s %s records [%r, %r), writing %s",
                assignment.batch.index, assignment.batch.plan, files.format, files.path,
                assignment.key_range.start, assignment.key_range.end, collection.name,
            )  # fmt: skip
            sample = QualitySample(assignment.quality.sample_size, seed=sample_seed(assignment))
            self._import(source, self._screen, collection, sample)
            started = time.perf_counter()
            collection.flush()
            self._timings.flush_ms = _ms(time.perf_counter() - started)
            quality: QualityResult | None = None
            if model is not None:
                started = time.perf_counter()
                counts = self._screen.counts
                quality = measure_quality(
                    sample.records,
                    collection,
                    model,
                    assignment.collection.metric_type,
                    norm_outliers=counts.norm_outliers,
                    duplicate_vectors=counts.duplicate_vectors,
                )
                self._timings.quality_ms = _ms(time.perf_counter() - started)
        finally:
            source.close()
            collection.close()
        result = self._result(Status.SUCCEEDED, Reason.COMPLETED, "", quality)
        log.info(
            "batch %s done: %s read, %s imported, skipped %s, %.1f records/s, coherence %s",
            assignment.batch.index, result.records.read, result.records.upserted,
            dict(result.records.skipped), result.records_per_second,
            quality.coherence if quality is not None else "not measured (no text)",
        )  # fmt: skip
        return result

    def _import(
        self,
        source: FileRecordsSource,
        screen: ImportScreen,
        collection: MilvusCollection,
        sample: QualitySample,
    ) -> None:
        """Reads, screens and upserts the whole key range, offering what was written to ``sample``."""
        per_request = upsert_rows_per_request(self.assignment.collection.dimension)
        pending: list[ImportedRecord] = []
        pages = source.pages()
        started = time.perf_counter()
        for page in pages:
            pending += screen.screen(page)
            self._read_s += time.perf_counter() - started
            while len(pending) >= per_request:
                self._write(collection, pending[:per_request], sample)
                del pending[:per_request]
            if self._stop.is_set():
                raise Stopped("the import was stopped")
            started = time.perf_counter()
        if pending:
            self._write(collection, pending, sample)

    def _write(
        self, collection: MilvusCollection, records: list[ImportedRecord], sample: QualitySample
    ) -> None:
        keeps_hash = collection.has_content_hash
        rows: list[dict[str, Any]] = [
            {
                self.assignment.collection.primary_key_field: record.key,
                self.assignment.collection.vector_field: record.vector,
                **record.fields,
                **({CONTENT_HASH_FIELD: record.content_hash} if keeps_hash else {}),
            }
            for record in records
        ]
        started = time.perf_counter()
        self._upserted += collection.upsert(rows)
        self._write_s += time.perf_counter() - started
        for record in records:
            if record.text is not None:
                sample.offer(record.key, record.text)

    # -- the result -------------------------------------------------------------------------

    def failed_result(self, reason: Reason, message: str) -> WorkerResult:
        return self._result(Status.FAILED, reason, message, None)

    def _result(
        self, status: Status, reason: Reason, message: str, quality: QualityResult | None
    ) -> WorkerResult:
        assignment = self.assignment
        counts = self._screen.counts if self._screen is not None else ScreenCounts()
        total_s = time.perf_counter() - self._started
        timings = self._timings.model_copy(
            update={"total_ms": _ms(total_s), "read_ms": _ms(self._read_s), "write_ms": _ms(self._write_s)}
        )
        records = RecordCounts(
            read=counts.read,
            embedded=0,
            upserted=self._upserted,
            skipped={str(reason): count for reason, count in sorted(counts.skipped.items()) if count},
        )
        result = batch_result(assignment, status, reason, message, records, timings, quality, total_s)
        model = self._model if self._model_used else None
        if model is not None:
            result.model = model_report(model)
        if status is Status.SUCCEEDED:
            result.recommendations = self._recommendations(records, quality)
        return result

    def _recommendations(self, records: RecordCounts, quality: QualityResult | None) -> list[str]:
        """The embedding worker's advice, with the coherence advice said for imported vectors."""
        assignment, model = self.assignment, self._model if self._model_used else None
        advice: list[str] = list(model.notes) if model is not None else []
        coherence = quality.coherence if quality is not None else None
        if coherence is not None and coherence.mean < HEALTHY_COHERENCE:
            advice.append(
                f"coherence {coherence.mean:.2f} is below {HEALTHY_COHERENCE}: the imported vectors differ "
                f"from {assignment.model.model}'s encoding of their text. Were they made by another model, "
                "or with other settings (normalize, truncateDim, a prefix such as 'passage: ')? Declare the "
                "model that made them, or remove vectorField to embed the texts"
            )
        not_normalized = records.skipped.get(str(SkipReason.NOT_NORMALIZED), 0)
        if not_normalized:
            advice.append(
                f"{not_normalized} imported vectors are not of length 1 although embedding.normalize is "
                "true: normalise them before the import, or declare normalize: false if the model does not"
            )
        general = quality.model_copy(update={"coherence": None}) if quality is not None else None
        advice += recommend(
            BatchFacts(
                metric=assignment.collection.metric_type,
                normalize=assignment.model.normalize,
                precision="float32",  # what was stored is what the files held
                max_seq_length=1,
                full_max_seq_length=1,
                records=records,
                quality=general,
                batch_sizes=BatchSizes(),
                min_batch_size=assignment.encode.min_batch_size,
                max_batch_size=assignment.encode.max_batch_size,
                target_batch_latency_ms=assignment.encode.target_batch_latency_ms,
                batch_p50_ms=0.0,
                encode_idle_share=0.0,
            )
        )
        return advice[:MAX_RECOMMENDATIONS]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
