"""Applying a page of source rows to the collection, as the sync worker does: each row becomes
what a backfill would have written for it, and only what differs is written.

A row is built exactly as the batch pipeline builds it (TextBuilder, FieldMapper, the same
character cut), then compared with what the collection holds for its key:

- same content hash and same scalar fields: nothing to do (not written, not counted);
- same content hash, other fields: the stored vector is written again with the new fields
  (``reused``: no model call);
- another hash (or none stored): the text is embedded again (``reembedded``), in micro-batches
  within encode's bounds, and the vector checked as the pipeline checks it.

A soft-deleted row, a key the source no longer has, and a row a backfill would skip (empty text,
a field that does not fit, a rejected vector) leave the collection: a backfill would not have
written them either. Deletes count only keys the collection held. A skipped row counts once: not
when it is read again (a full check reads every row, a poll the rows at its watermark again)
unless reading it again removed its entity.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vector_operator.api.vectorcollection import ScalarField
from vector_operator.contract.content_hash import CONTENT_HASH_FIELD, content_hash
from vector_operator.contract.result import SkipReason
from vector_operator.sources.records import Key, SourceRow
from vector_operator.sources.sql_changes import ChangedRow
from vector_operator.worker.batch_optimizer import BatchOptimizer
from vector_operator.worker.field_mapping import FieldMapper
from vector_operator.worker.milvus_collection import MilvusCollection, StoredEntity
from vector_operator.worker.pass_accounting import ApplyCounts
from vector_operator.worker.pipeline import MAX_UPSERT_BYTES, MAX_UPSERT_ROWS, Encoder, FloatArray, Stopped
from vector_operator.worker.quality import QualitySample
from vector_operator.worker.records import PreparedRecord
from vector_operator.worker.stored_fields import same_fields
from vector_operator.worker.text_building import TextBuilder
from vector_operator.worker.vector_checks import VectorChecker


@dataclass
class _Page:
    """One page's rows, built: what to write, and the keys to remove if the collection holds them."""

    records: dict[Key, PreparedRecord]
    leaving: set[Key]
    skipped: list[tuple[Key | None, bool]]
    """(collection key, read before) of each row that cannot be written."""


class ChangeApplier:
    """Applies pages of rows to one collection with one model."""

    def __init__(
        self,
        *,
        collection: MilvusCollection,
        encoder: Encoder,
        text_builder: TextBuilder,
        field_mapper: FieldMapper,
        scalar_fields: Sequence[ScalarField],
        mapped_fields: Sequence[str],
        checker: VectorChecker,
        optimizer: BatchOptimizer,
        fingerprint: bytes,
        max_text_chars: int,
        primary_key_field: str,
        vector_field: str,
        stop: threading.Event | None = None,
    ) -> None:
        self._collection = collection
        self._encoder = encoder
        self._text_builder = text_builder
        self._field_mapper = field_mapper
        by_name = {field.name: field for field in scalar_fields}
        self._field_types: Mapping[str, ScalarField] = {name: by_name[name] for name in mapped_fields}
        self._checker = checker
        self.optimizer = optimizer
        self._fingerprint = fingerprint
        self._max_text_chars = max_text_chars
        self._pk = primary_key_field
        self._vector = vector_field
        self._stop = stop or threading.Event()
        self._upsert_rows = max(1, min(MAX_UPSERT_ROWS, MAX_UPSERT_BYTES // (4 * max(1, checker.dimension))))
        self.wrote = False
        """Whether anything was upserted or deleted since :meth:`reset_wrote` (a flush is due)."""
        self.sample = QualitySample(0, "")
        """Re-embedded records offered for the pass's coherence check (see :meth:`start_sample`)."""

    def start_sample(self, size: int, seed: str) -> None:
        """A new sample of at most ``size`` re-embedded records, for the pass about to run."""
        self.sample = QualitySample(size, seed)

    def reset_wrote(self) -> None:
        self.wrote = False

    def collection_key(self, key: Key) -> Key | None:
        """A source key as the collection stores it; None when it cannot be one."""
        mapped = self._field_mapper.key(key)
        return None if isinstance(mapped, SkipReason) else mapped

    def apply(
        self,
        rows: Sequence[ChangedRow],
        gone: Iterable[Key] = (),
        read_before: Callable[[ChangedRow], bool] | None = None,
    ) -> ApplyCounts:
        """Applies ``rows`` (current source rows) and removes the keys in ``gone`` (collection keys
        the source does not have); returns what changed. ``read_before`` tells the rows an earlier
        pass (or the backfill) already read as they are: their skips are not counted again."""
        self._check_stop()
        page = self._build(rows, read_before or (lambda _: False))
        for key in gone:
            if key not in page.records:
                page.leaving.add(key)
        keys = [*page.records, *page.leaving]
        stored = self._collection.stored(keys, list(self._field_types)) if keys else {}
        counts = ApplyCounts(
            skipped=sum(
                1 for key, before in page.skipped if not before or (key is not None and key in stored)
            )
        )
        reuse, embed = self._sort(page.records, stored)
        vectors = self._stored_vectors(reuse, embed)
        written: list[tuple[PreparedRecord, FloatArray]] = [(record, vectors[record.key]) for record in reuse]
        counts.reused = len(written)
        accepted, rejected = self._embed(embed)
        for record, _ in accepted:
            self.sample.offer(record.key, record.text)
        written += accepted
        counts.reembedded = len(accepted)
        counts.skipped += len(rejected)
        page.leaving.update(record.key for record in rejected)
        counts.changes_applied = self._upsert(written)
        leaving = [key for key in page.leaving if key in stored]
        counts.deletes_applied = self.delete_existing(leaving)
        return counts

    def delete_existing(self, keys: Sequence[Key]) -> int:
        """Deletes ``keys``, which the collection holds; returns how many."""
        if keys:
            self._check_stop()
            self._collection.delete(keys)
            self.wrote = True
        return len(keys)

    # -- building -----------------------------------------------------------------------------

    def _build(self, rows: Sequence[ChangedRow], read_before: Callable[[ChangedRow], bool]) -> _Page:
        page = _Page(records={}, leaving=set(), skipped=[])
        for changed in rows:
            key = None if changed.row.key is None else self.collection_key(changed.row.key)
            if key is None:
                page.skipped.append((None, read_before(changed)))
                continue
            page.records.pop(key, None)
            page.leaving.discard(key)
            if changed.deleted:
                page.leaving.add(key)
                continue
            record = self._prepare(key, changed.row)
            if record is None:
                page.skipped.append((key, read_before(changed)))
                page.leaving.add(key)  # a backfill would not have written it: a stale entity goes
            else:
                page.records[key] = record
        return page

    def _prepare(self, key: Key, row: SourceRow) -> PreparedRecord | None:
        text = self._text_builder.build(row.text_values)
        if isinstance(text, SkipReason):
            return None
        fields = self._field_mapper.map(row.field_values)
        if isinstance(fields, SkipReason):
            return None
        text = text[: self._max_text_chars]  # exactly what the batch pipeline embeds and hashes
        return PreparedRecord(
            key=key, text=text, fields=fields, content_hash=content_hash(text, self._fingerprint)
        )

    # -- deciding -----------------------------------------------------------------------------

    def _sort(
        self, records: Mapping[Key, PreparedRecord], stored: Mapping[Key, StoredEntity]
    ) -> tuple[list[PreparedRecord], list[PreparedRecord]]:
        """The records whose stored vector is still right but whose fields changed, and those to
        embed; unchanged records are in neither."""
        reuse: list[PreparedRecord] = []
        embed: list[PreparedRecord] = []
        for key, record in records.items():
            entity = stored.get(key)
            if entity is None or entity.content_hash is None or entity.content_hash != record.content_hash:
                embed.append(record)
            elif not same_fields(record.fields, entity.fields, self._field_types):
                reuse.append(record)
        return reuse, embed

    def _stored_vectors(
        self, reuse: list[PreparedRecord], embed: list[PreparedRecord]
    ) -> dict[Key, FloatArray]:
        """The stored vectors of ``reuse``; a record whose entity went meanwhile moves to ``embed``."""
        if not reuse:
            return {}
        found = self._collection.stored([record.key for record in reuse], [], with_vectors=True)
        vectors = {key: entity.vector for key, entity in found.items() if entity.vector is not None}
        embed += [record for record in reuse if record.key not in vectors]
        reuse[:] = [record for record in reuse if record.key in vectors]
        return vectors

    # -- embedding and writing ----------------------------------------------------------------

    def _embed(
        self, records: list[PreparedRecord]
    ) -> tuple[list[tuple[PreparedRecord, FloatArray]], list[PreparedRecord]]:
        """Encodes ``records`` longest first in micro-batches the optimizer sizes; returns the
        accepted (record, vector) pairs and the rejected records."""
        ordered = sorted(records, key=lambda record: len(record.text), reverse=True)
        accepted: list[tuple[PreparedRecord, FloatArray]] = []
        rejected: list[PreparedRecord] = []
        position = 0
        while position < len(ordered):
            self._check_stop()
            batch = ordered[position : position + self.optimizer.size]
            position += len(batch)
            texts = [record.text for record in batch]
            started = time.perf_counter()
            vectors = self._encoder.encode(texts)
            self.optimizer.observe(len(batch), time.perf_counter() - started)
            checked = self._checker.check(vectors, texts)
            for record, vector, keep in zip(batch, vectors, checked.accepted, strict=True):
                if keep:
                    accepted.append((record, np.asarray(vector, dtype=np.float32)))
                else:
                    rejected.append(record)
        return accepted, rejected

    def _upsert(self, written: list[tuple[PreparedRecord, FloatArray]]) -> int:
        keeps_hash = self._collection.has_content_hash
        rows: list[dict[str, Any]] = [
            {
                self._pk: record.key,
                self._vector: vector,
                **record.fields,
                **({CONTENT_HASH_FIELD: record.content_hash} if keeps_hash else {}),
            }
            for record, vector in written
        ]
        for start in range(0, len(rows), self._upsert_rows):
            self._check_stop()
            self._collection.upsert(rows[start : start + self._upsert_rows])
            self.wrote = True
        return len(rows)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Stopped("the sync worker is stopping")
