"""One batch, start to end: check everything that can be checked before the first row is read,
run the pipeline, flush, measure quality on a sample, and account for it all in a result.

A batch of files that carry their vectors (``vectorField``) embeds nothing: :class:`BatchRun`
hands it to :class:`~vector_operator.worker.vector_import.ImportRun`, so that the worker's command
runs every batch the same way."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from vector_operator.contract.assignment import WorkerAssignment
from vector_operator.contract.content_hash import model_fingerprint
from vector_operator.contract.result import (
    BatchReference,
    ModelReport,
    QualityResult,
    Reason,
    RecordCounts,
    Status,
    Timings,
    WorkerResult,
)
from vector_operator.sources import RecordSource, SourceMisconfigured
from vector_operator.sources.files import FileRecordsSource
from vector_operator.sources.sql_pages import SqlTableSource
from vector_operator.worker.batch_optimizer import BatchOptimizer
from vector_operator.worker.cpu_budget import available_cpus
from vector_operator.worker.embedding_model import EmbeddingModel, load_embedding_model
from vector_operator.worker.field_mapping import FieldMapper
from vector_operator.worker.milvus_collection import MilvusCollection
from vector_operator.worker.pipeline import Pipeline, PipelineCounts, text_char_limit
from vector_operator.worker.process_start import seconds_since_start
from vector_operator.worker.quality import QualitySample, measure_quality
from vector_operator.worker.recommendations import BatchFacts, recommend
from vector_operator.worker.text_building import TextBuilder
from vector_operator.worker.vector_checks import VectorChecker

if TYPE_CHECKING:
    from vector_operator.worker.vector_import import ImportRun

log = logging.getLogger(__name__)


class DimensionMismatch(Exception):
    """The model's vectors do not have the collection's dimension; retrying does not help."""


def required_env(environ: Mapping[str, str], name: str, what: str) -> str:
    """The value of the environment variable ``name`` (``what`` it holds); raises
    SourceMisconfigured saying where the pod takes it from when it is not set."""
    value = environ.get(name)
    if not value:
        raise SourceMisconfigured(
            f"environment variable {name} ({what}) is not set: the Job's pod takes it from the Secret the "
            "MigrationPlan names"
        )
    return value


def checked_model(
    assignment: WorkerAssignment,
    model: EmbeddingModel | None,
    timings: Timings,
    *,
    measure_startup: bool,
) -> EmbeddingModel:
    """``model``, or the assignment's model loaded (its load and start-up times go into
    ``timings``), once it is known to produce vectors of the collection's dimension; raises
    :class:`DimensionMismatch` otherwise."""
    if model is None:
        started = time.perf_counter()
        model = load_embedding_model(assignment.model)
        timings.model_load_ms = _ms(time.perf_counter() - started)
        age = seconds_since_start() if measure_startup else None
        timings.startup_ms = _ms(age) if age is not None else timings.model_load_ms
    dimension = assignment.collection.dimension
    if model.dimension != dimension:
        raise DimensionMismatch(
            f"model {model.name} produces {model.dimension}-dimensional vectors but collection "
            f"{assignment.collection.name} has dimension {dimension}: use a model of that "
            "dimension, or truncateDim for a Matryoshka model"
        )
    return model


def open_source(
    assignment: WorkerAssignment, environ: Mapping[str, str], max_text_chars: int | None = None
) -> tuple[RecordSource, TextBuilder]:
    """The record source of the assignment and the text builder for its rows (an SQL source cuts
    texts past ``max_text_chars`` in the database)."""
    sql, files = assignment.source.sql, assignment.source.files
    if sql is not None:
        builder = TextBuilder(columns=sql.text_columns, template=sql.text_template)
        source: RecordSource = SqlTableSource(
            required_env(environ, sql.url_env, "the source database URL"),
            table=sql.table,
            primary_key=sql.primary_key,
            text_columns=builder.columns,
            fields=sql.fields or {},
            key_range=assignment.key_range,
            max_text_chars=max_text_chars,
            soft_delete_column=sql.soft_delete_column,
        )
        return source, builder
    assert files is not None  # the assignment has exactly one of sql and files
    builder = TextBuilder(columns=files.text_fields, template=files.text_template)
    source = FileRecordsSource(
        file_format=files.format,
        path=files.path,
        id_field=files.id_field,
        text_fields=builder.columns,
        fields=files.fields or {},
        key_range=assignment.key_range,
        s3=files.s3,
        environ=environ,
    )
    return source, builder


class BatchRun:
    """Runs one assignment. :meth:`execute` returns the result or raises; after a failure,
    :meth:`failed_result` reports what was done until then."""

    def __init__(
        self,
        assignment: WorkerAssignment,
        environ: Mapping[str, str],
        *,
        model: EmbeddingModel | None = None,
        stop: threading.Event | None = None,
        measure_startup: bool = False,
    ) -> None:
        """``measure_startup``: this process was started for this batch (a Job's pod), so its start-up
        is counted from the process's start."""
        self.assignment = assignment
        self._measure_startup = measure_startup
        self._environ = environ
        self._model = model
        self._stop = stop or threading.Event()
        self._started = time.perf_counter()
        self._timings = Timings()
        self._pipeline: Pipeline | None = None
        self._counts = PipelineCounts()
        self._import: ImportRun | None = None
        files = assignment.source.files
        if files is not None and files.vector_field is not None:
            from vector_operator.worker.vector_import import ImportRun  # it builds on this module

            self._import = ImportRun(
                assignment,
                environ,
                model=model,
                stop=self._stop,
                measure_startup=measure_startup,
                keep_content_hash=files.keeps_content_hash,
            )

    def execute(self) -> WorkerResult:
        if self._import is not None:
            return self._import.execute()
        model = self._load_model()  # first: the model's window bounds what is read of each text
        limit = text_char_limit(model.full_max_seq_length)
        source, builder = open_source(self.assignment, self._environ, limit)
        try:
            return self._execute(source, builder, model, limit)
        finally:
            source.close()

    def _load_model(self) -> EmbeddingModel:
        self._model = checked_model(
            self.assignment, self._model, self._timings, measure_startup=self._measure_startup
        )
        return self._model

    def _execute(
        self, source: RecordSource, builder: TextBuilder, model: EmbeddingModel, limit: int
    ) -> WorkerResult:
        assignment = self.assignment
        field_mapper = FieldMapper(
            assignment.collection.scalar_fields,
            list(assignment.source.fields),
            assignment.collection.primary_key,
        )
        token_env = assignment.milvus.token_env
        token = required_env(self._environ, token_env, "the Milvus token") if token_env else None
        collection = MilvusCollection(assignment.milvus, assignment.collection, token)
        try:
            collection.verify()
            bounds = assignment.encode
            self._pipeline = Pipeline(
                source=source,
                text_builder=builder,
                field_mapper=field_mapper,
                token_counter=model.token_counter(),
                encoder=model,
                writer=collection,
                optimizer=BatchOptimizer(
                    bounds.min_batch_size,
                    bounds.max_batch_size,
                    bounds.target_batch_latency_ms / 1000.0,
                    size=assignment.start_batch_size or 0,  # clamped into the bounds; 0: the default
                ),
                checker=VectorChecker(assignment.collection.dimension),
                sample=QualitySample(assignment.quality.sample_size, seed=sample_seed(assignment)),
                primary_key_field=assignment.collection.primary_key_field,
                vector_field=assignment.collection.vector_field,
                max_text_chars=limit,
                stop=self._stop,
                content_fingerprint=model_fingerprint(assignment.model)
                if collection.has_content_hash
                else None,
            )
            log.info(
                "batch %s of plan %s: reading %s, writing %s",
                assignment.batch.index, assignment.batch.plan, _describe_source(assignment), collection.name,
            )  # fmt: skip
            self._counts = self._pipeline.run()
            started = time.perf_counter()
            collection.flush()
            self._timings.flush_ms = _ms(time.perf_counter() - started)
            started = time.perf_counter()
            quality = measure_quality(
                self._pipeline.sample.records,
                collection,
                model,
                assignment.collection.metric_type,
                norm_outliers=self._counts.norm_outliers,
                duplicate_vectors=self._counts.duplicate_vectors,
            )
            self._timings.quality_ms = _ms(time.perf_counter() - started)
        finally:
            collection.close()
        result = self._result(Status.SUCCEEDED, Reason.COMPLETED, "", quality)
        log.info(
            "batch %s done: %s read, %s upserted, skipped %s, %.1f records/s, coherence %s",
            assignment.batch.index, result.records.read, result.records.upserted,
            dict(result.records.skipped), result.records_per_second, quality.coherence,
        )  # fmt: skip
        return result

    def failed_result(self, reason: Reason, message: str) -> WorkerResult:
        if self._import is not None:
            return self._import.failed_result(reason, message)
        return self._result(Status.FAILED, reason, message, None)

    def _result(
        self, status: Status, reason: Reason, message: str, quality: QualityResult | None
    ) -> WorkerResult:
        assignment, counts, model = self.assignment, self._counts, self._model
        pipeline = self._pipeline
        if pipeline is not None and status is Status.FAILED:
            counts = pipeline.counts_so_far()
        total_s = time.perf_counter() - self._started
        timings = self._timings.model_copy(update={"total_ms": _ms(total_s)})
        batch_sizes = pipeline.optimizer.log.summary() if pipeline else None
        if pipeline is not None:
            stage = pipeline.timings
            timings.read_ms, timings.encode_ms = _ms(stage.read_s), _ms(stage.encode_s)
            timings.write_ms, timings.encode_idle_ms = _ms(stage.write_s), _ms(stage.encode_idle_s)
            timings.batch_p50_ms = stage.batch_latency.percentile_ms(50)
            timings.batch_p95_ms = stage.batch_latency.percentile_ms(95)
        records = RecordCounts(
            read=counts.read,
            embedded=counts.embedded,
            upserted=counts.upserted,
            skipped={str(reason): count for reason, count in sorted(counts.skipped.items()) if count},
            truncated=counts.truncated,
        )
        result = batch_result(assignment, status, reason, message, records, timings, quality, total_s)
        if batch_sizes is not None:
            result.batch_sizes = batch_sizes
        if model is not None:
            result.model = model_report(model)
            if status is Status.SUCCEEDED:
                result.recommendations = recommend(
                    BatchFacts(
                        metric=assignment.collection.metric_type,
                        normalize=assignment.model.normalize,
                        precision=model.precision,
                        max_seq_length=model.max_seq_length,
                        full_max_seq_length=model.full_max_seq_length,
                        records=records,
                        quality=quality,
                        batch_sizes=result.batch_sizes,
                        min_batch_size=assignment.encode.min_batch_size,
                        max_batch_size=assignment.encode.max_batch_size,
                        target_batch_latency_ms=assignment.encode.target_batch_latency_ms,
                        batch_p50_ms=timings.batch_p50_ms,
                        encode_idle_share=timings.encode_idle_ms / max(timings.total_ms, 1),
                    ),
                    notes=model.notes,
                )
        return result


def model_report(model: EmbeddingModel) -> ModelReport:
    """How ``model`` ran, for the result."""
    return ModelReport(
        name=model.name,
        device=model.device,
        backend=str(model.backend),
        precision=model.precision,
        max_seq_length=model.max_seq_length,
        full_max_seq_length=model.full_max_seq_length,
        dimension=model.dimension,
        threads=available_cpus(),
    )


def batch_result(
    assignment: WorkerAssignment,
    status: Status,
    reason: Reason,
    message: str,
    records: RecordCounts,
    timings: Timings,
    quality: QualityResult | None,
    total_s: float,
) -> WorkerResult:
    """The result of a batch that took ``total_s``; its rate leaves the model's load out."""
    working_s = max(total_s - timings.model_load_ms / 1000.0, 1e-9)
    batch = assignment.batch
    return WorkerResult(
        status=status,
        reason=reason,
        message=message,
        batch=BatchReference(namespace=batch.namespace, plan=batch.plan, index=batch.index),
        collection=assignment.collection.name,
        records=records,
        records_per_second=round(records.upserted / working_s, 1),
        timings=timings,
        quality=quality,
    )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def sample_seed(assignment: WorkerAssignment) -> str:
    """The quality sample's seed: the same batch samples the same records when it runs again."""
    batch = assignment.batch
    return f"{batch.namespace}/{batch.plan}/{batch.index}"


def _describe_source(assignment: WorkerAssignment) -> str:
    sql, files, key_range = assignment.source.sql, assignment.source.files, assignment.key_range
    where = f"[{key_range.start!r}, {key_range.end!r})"
    if sql is not None:
        return f"table {sql.table} keys {where}"
    assert files is not None
    return f"{files.format} {files.path} records {where}"
