"""One re-index run inside a VectorCollection reconcile: decide (collection.reindex), then copy,
validate and swing through the Milvus adapter, writing progress into ``status.reindex`` as it goes
so that a restarted operator resumes where the copy stood."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import kopf

from vector_operator.api.collection_reindex import ReindexSpec, ReindexState, ReindexStatus
from vector_operator.api.rollbackpolicy import Execution, GuardedPhase, TriggerMetric
from vector_operator.collection.milvus_layout import CollectionLayout
from vector_operator.collection.ownership import Owner
from vector_operator.collection.reconciliation import Notice
from vector_operator.collection.reindex import Hold, ReindexSituation, check_failure, next_step
from vector_operator.collection.reindex_guard import (
    STOPS_THE_COPY,
    Guard,
    execution,
    firing,
    steps_before_swing,
)
from vector_operator.milvus.collection_copy import Page, check_copy, copy_rows, wait_indexed
from vector_operator.milvus.collections import AliasMoved, MilvusCollections
from vector_operator.milvus.connection import MilvusUnavailable
from vector_operator.milvus.exact_recall import ServedRecall, served_recall

PROGRESS_EVERY_S = 1.0


@dataclass
class ReindexRun:
    status: ReindexStatus | None
    hold: Hold | None = None
    swung: bool = False


@dataclass
class Reindexer:
    milvus: MilvusCollections
    layout: CollectionLayout
    owner: Owner
    spec: ReindexSpec
    page_size: int
    report: Callable[[ReindexStatus], None]
    announce: Callable[[Notice], None]
    """Posts an Event at once: a copy may run for long, and a human should see it start."""
    guards: Callable[[], Sequence[Guard]]
    """The RollbackPolicies watching this collection's re-indexes (read when validation needs them)."""
    record: Callable[[str, Execution], None]
    """Records a policy's execution in its status."""
    collection: str  # the VectorCollection's name, for the policy's record
    active_plans: Callable[[], Sequence[str]]
    """The MigrationPlans working on the collection now (asked again just before the swing)."""
    logger: logging.Logger | kopf.Logger

    def run(self, situation: ReindexSituation) -> ReindexRun:
        step = next_step(situation)
        if isinstance(step, Hold):
            return ReindexRun(situation.status, hold=step)
        status, run = step.status, ReindexRun(step.status)
        if step.discard is not None:
            self.milvus.drop(step.discard, self.owner)
        if step.replaced is not None and self.milvus.drop(step.replaced, self.owner):
            self.announce(
                Notice(
                    "PreviousCollectionDropped",
                    f"dropped {step.replaced}: a new re-index replaces {situation.serving}, which had"
                    " replaced it",
                )
            )
        if not step.resumed:
            self.announce(
                Notice(
                    "ReindexStarted",
                    f"building {status.index} on {status.target} from a copy of {status.total} stored"
                    f" vectors; {status.source} serves meanwhile",
                )
            )
        elif status.state is ReindexState.COPYING:
            self.announce(
                Notice(
                    "ReindexResumed",
                    f"resuming the copy into {status.target} after {status.copied}/{status.total} vectors",
                )
            )
        self.report(status)
        refused = None
        if status.state is ReindexState.COPYING:  # a re-index stopped while it validated skips this
            refused = self._create(status)
            if refused is None:
                self._copy(status)
                status.state = ReindexState.VALIDATING
                self.report(status)
        unindexed = refused or wait_indexed(self.milvus, status.target)
        if unindexed is not None and unindexed.startswith("IndexBuilding"):
            return ReindexRun(
                status, hold=Hold("Reindexing", f"{unindexed}; {status.source} serves meanwhile")
            )
        failure = unindexed or self._validate(status, situation)
        if failure is None:
            try:
                run.swung = self.milvus.swing_alias(situation.alias, status.target, expected=status.source)
            except AliasMoved as error:
                failure = f"AliasMoved: {error}"
        status.finished_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        if failure is not None:
            self.milvus.drop(status.target, self.owner)
            status.state, status.message = ReindexState.FAILED, failure
            self.report(status)  # at once: the next reconcile must not take the copy for unfinished
            self.announce(Notice("ReindexFailed", f"{failure}; {status.source} keeps serving", warning=True))
            return run
        status.state = ReindexState.SUCCEEDED
        status.message = (
            f"alias {situation.alias} serves {status.target} ({status.index}); {status.source} is kept for"
            f" {self.spec.retention}"
        )
        self.report(status)
        rate = f"{status.vectors_per_second:.0f}" if status.vectors_per_second is not None else "-"
        self.announce(
            Notice(
                "Reindexed",
                f"alias {situation.alias} now serves {status.target} with {status.index}: {status.copied}"
                f" vectors copied at {rate}/s, recall@10 {status.recall_at_k}; {status.source} is kept for"
                f" {self.spec.retention}",
            )
        )
        return run

    def _create(self, status: ReindexStatus) -> str | None:
        """Creates the copy with the new index; why Milvus refused it (its parameters), or None. An
        unreachable Milvus raises MilvusUnavailable, and the re-index resumes when it is back."""
        try:
            self.milvus.create(status.target, self.layout, self.owner)
        except MilvusUnavailable as error:
            self.milvus.names()  # still reachable: the server refused the collection or its index
            return f"IndexBuildFailed: {error}"
        return None

    def _validate(self, status: ReindexStatus, situation: ReindexSituation) -> str | None:
        """Why the copy must not serve, or None: counts, sampled rows, recall@10 against exact
        search, the RollbackPolicies watching, and a MigrationPlan that started meanwhile."""
        served = served_recall(self.milvus, status.target, self.layout, self.spec.validation_sample_size)
        status.recall_at_k = None if served.recall_at_k is None else round(served.recall_at_k, 4)
        check = check_copy(
            self.milvus, status.source, status.target, self.spec.validation_sample_size, status.recall_at_k
        )
        if (failure := check_failure(check, self.spec)) is not None:
            return failure
        if (failure := self._guarded(status, served, situation)) is not None:
            return failure
        if started := self.active_plans():
            return (
                f"PlanStarted: MigrationPlan {', '.join(started)} started during the copy: the copy was"
                " dropped, and the re-index runs again once the plan has finished"
            )
        return None

    def _guarded(
        self, status: ReindexStatus, served: ServedRecall, situation: ReindexSituation
    ) -> str | None:
        """Why a RollbackPolicy stops the copy from serving, or None."""
        guards = self.guards()
        measured = {
            TriggerMetric.RECALL_AT_K: served.recall_at_k,
            TriggerMetric.SEARCH_LATENCY_P95_MS: served.search_latency_p95_ms,
        }
        fired = firing(guards, GuardedPhase.VALIDATING, measured) if guards else None
        if fired is None:
            return None
        stops = any(fired.wants(action) for action in STOPS_THE_COPY)
        self.record(
            fired.guard.name, execution(fired, self.collection, steps_before_swing(fired), situation.now)
        )
        if not stops:  # a Pause alone: recorded, and the policy still watches after the swing
            self.announce(
                Notice("RollbackSkipped", f"{fired.summary()}: a re-index does not pause", warning=True)
            )
            return None
        status.fired = fired.summary()
        return f"PolicyTriggered: {fired.summary()}: the copy was dropped before it served"

    def _copy(self, status: ReindexStatus) -> None:
        last_report = time.monotonic()

        def on_page(page: Page) -> None:
            nonlocal last_report
            status.copied += page.rows
            status.resume_after = page.last_key
            status.copy_seconds = round((status.copy_seconds or 0.0) + page.seconds, 3)
            if status.copy_seconds:
                status.vectors_per_second = round(status.copied / status.copy_seconds, 1)
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                self.report(status)
                last_report = time.monotonic()

        copy_rows(
            self.milvus,
            status.source,
            status.target,
            status.resume_after,
            self.page_size,
            self.spec.max_vectors_per_second,
            on_page,
        )
        self.logger.info(f"copied {status.copied} vectors from {status.source} into {status.target}")
