"""The tuning study of one VectorCollection, run by a Kopf daemon beside its reconciles: decide
whether a study is due (tuning.schedule), then measure the current parameters and the sampler's
candidates one trial at a time on scratch collections, writing every trial into
``status.tuning`` (the study's memory: a restarted operator resumes it), and conclude
(tuning.outcome). Scratch collections are dropped after every round, whatever happened."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from vector_operator.api.collection_tuning import TuningApply, TuningState, TuningStatus
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import CollectionLayout, layout_of
from vector_operator.collection.ownership import Owner
from vector_operator.collection.physical_names import scratch_names
from vector_operator.collection.tuned_layout import effective_layout, serving_fingerprint
from vector_operator.controller.context import OperatorContext
from vector_operator.controller.tuning_trials import TrialRunner
from vector_operator.kube.custom_objects import read_custom_object
from vector_operator.kube.secrets import SecretReader, SecretUnavailable
from vector_operator.kube.targets import patch_collection_status
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusUnavailable
from vector_operator.milvus.endpoints import MilvusNotConfigured, endpoint_for
from vector_operator.milvus.tuning_bench import TuningBench
from vector_operator.status_conditions import condition_in
from vector_operator.tuning import schedule
from vector_operator.tuning.search_space import (
    TUNABLE_TYPES,
    Candidate,
    SearchSpace,
    seed_defaults,
    tuned_types,
)

PLURAL = "vectorcollections"
IDLE_S = 60.0
RETRY_S = 30.0
MIN_QUERIES = 10
Json = dict[str, Any]


def _serving(status: Mapping[str, Any]) -> str | None:
    """Why a study cannot run now, or None when the collection serves and nothing moves it."""
    if condition_in(status, "Ready").get("status") != "True":
        return "waiting for the collection to serve"
    moving = condition_in(status, "UpToDate").get("reason") in ("Reindexing", "ReindexWaiting")
    if status.get("phase") in ("Migrating", "Reindexing") or moving:
        return "waiting for the re-index or migration to finish"
    return None


class TooFewVectors(Exception):
    """The collection is (still) too small to tune: the study waits, it does not fail."""


class TuningRound:
    """One look at the collection: start, resume or skip a study."""

    def __init__(self, context: OperatorContext, body: kopf.Body, stopped: kopf.DaemonStopped) -> None:
        self.context, self.body, self.stopped = context, body, stopped
        self.namespace, self.name = str(body.metadata.namespace), str(body.metadata.name)
        self.owner = Owner(self.namespace, self.name, str(body.metadata.uid))
        self.now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)

    def write(self, status: TuningStatus) -> None:
        metrics = self.context.metrics
        metrics.tuning_trials.labels(self.namespace, self.name).set(status.trials_done)
        for parameters, figures in (("current", status.current), ("best", status.best)):
            if figures is not None and figures.recall_at_k is not None:
                labels = (self.namespace, self.name, parameters)
                metrics.tuning_result.labels(*labels, "recall_at_k").set(figures.recall_at_k)
                if figures.search_latency_p95_ms is not None:
                    metrics.tuning_result.labels(*labels, "search_p95_ms").set(figures.search_latency_p95_ms)
        document = status.model_dump(by_alias=True, mode="json")
        patch_collection_status(self.context.custom, self.namespace, self.name, {"tuning": document})

    def run(self, logger: logging.Logger | kopf.Logger) -> float:
        """Seconds until the next look."""
        fresh = read_custom_object(self.context.custom, self.namespace, PLURAL, self.name)
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return IDLE_S
        spec = VectorCollectionSpec.model_validate(fresh["spec"])
        raw_status: Json = fresh.get("status") or {}
        if spec.tuning is None:
            return IDLE_S
        try:
            status = TuningStatus.model_validate(raw_status["tuning"]) if raw_status.get("tuning") else None
        except ValidationError:
            status = None
        spec_layout = layout_of(spec)
        fingerprint = schedule.study_fingerprint(spec.tuning, spec_layout)
        due = schedule.due(spec.tuning, status, fingerprint, self.now)
        if due is None:
            return IDLE_S
        if (waiting := _serving(raw_status)) is not None:
            logger.info(f"tuning: {waiting}")
            return RETRY_S
        try:
            endpoint = endpoint_for(
                spec.milvus,
                self.context.settings.default_milvus_uri,
                SecretReader(self.context.core, self.namespace),
            )
        except (MilvusNotConfigured, SecretUnavailable) as error:
            logger.warning(f"tuning: {error}")
            return RETRY_S
        milvus = MilvusCollections(self.context.clients, endpoint, self.context.metrics.observe_milvus_call)
        layout = self.serving_layout(milvus, spec, spec_layout, status)
        if layout is None:
            logger.info("tuning: waiting for the index the collection serves with to settle")
            return RETRY_S
        if due is schedule.Due.START:
            status = self.fresh(fingerprint, spec_layout, status)
            self.write(status)  # Running before any scratch collection exists: reconciles leave them be
        assert status is not None
        bench = TuningBench(
            milvus, spec.collection_name, self.owner, layout.space.metric, spec.tuning.objective.k
        )
        try:
            self.study(spec, layout, spec_layout, status, milvus, bench, logger)
        except MilvusUnavailable as error:
            status.message = f"Milvus failed during the study, retrying in {int(RETRY_S)} s: {error}"
            self.write(status)
            logger.warning(status.message)
            return RETRY_S
        except TooFewVectors as error:
            status.message = str(error)
            self.write(status)
            logger.info(f"tuning: {error}")
            return RETRY_S
        finally:
            try:
                bench.drop_scratch()
            except MilvusUnavailable as error:  # dropped on the next round, or by the finalizer
                logger.warning(
                    f"tuning: could not drop {', '.join(scratch_names(spec.collection_name))}: {error}"
                )
        return IDLE_S

    @staticmethod
    def serving_layout(
        milvus: MilvusCollections,
        spec: VectorCollectionSpec,
        spec_layout: CollectionLayout,
        status: TuningStatus | None,
    ) -> CollectionLayout | None:
        """What the collection serves with now: tuning's applied parameters once a re-index built
        them, the spec's until then; None while neither is what the serving index was built with."""
        observed = milvus.observe(spec.collection_name)
        serving = observed.physicals.get(observed.alias_target or "")
        built = serving.index_fingerprint if serving is not None else None
        for layout in (effective_layout(spec_layout, status), spec_layout):
            if built is None or layout.index.fingerprint == built:
                return layout
        return None

    def fresh(
        self, fingerprint: str, spec_layout: CollectionLayout, before: TuningStatus | None
    ) -> TuningStatus:
        """A new study; what an earlier one applied stays for as long as the spec's index and search
        parameters are those it replaced (a change of spec.tuning alone does not undo it)."""
        keep = before is not None and before.applied_for == serving_fingerprint(spec_layout)
        return TuningStatus(
            state=TuningState.RUNNING,
            fingerprint=fingerprint,
            started_at=self.now,
            message="the study starts",
            applied=before.applied if keep and before is not None else None,
            applied_for=before.applied_for if keep and before is not None else None,
        )

    def study(
        self,
        spec: VectorCollectionSpec,
        layout: CollectionLayout,
        spec_layout: CollectionLayout,
        status: TuningStatus,
        milvus: MilvusCollections,
        bench: TuningBench,
        logger: logging.Logger | kopf.Logger,
    ) -> None:
        tuning = spec.tuning
        assert tuning is not None
        current = Candidate(layout.index.index_type, dict(layout.index.params), dict(layout.search_params))
        support = milvus.index_support()
        asked = tuned_types(tuning, current.index_type)
        usable, skipped = support.usable(asked) if support is not None else (asked, [])
        status.index_types, status.skipped_index_types = usable, skipped
        ignored = {t: support.ignores(t) for t in usable if support is not None and support.ignores(t)}
        status.ignored_parameters = [f"{t}.{name}" for t, names in ignored.items() for name in names]
        searchable = current.index_type in TUNABLE_TYPES
        if tuning.apply is TuningApply.SEARCH_PARAMS and not searchable:
            return self.fail(
                status,
                f"apply: SearchParams tunes nprobe or ef, and index type {current.index_type} has neither",
            )
        if not usable:
            return self.fail(status, f"the Milvus server builds none of {', '.join(skipped)}")
        bench.drop_scratch()
        sample = bench.read_sample(spec.collection_name, tuning.sample_size, tuning.queries)
        if sample.queries.shape[0] < MIN_QUERIES or sample.size < 10 * MIN_QUERIES:
            raise TooFewVectors(
                f"the collection holds {sample.size + sample.queries.shape[0]} vectors; a study needs at"
                f" least {11 * MIN_QUERIES}: it starts once the collection is filled"
            )
        status.sample_size, status.queries = sample.size, int(sample.queries.shape[0])
        first, _ = scratch_names(spec.collection_name)
        bench.fill(first, sample)
        space = SearchSpace(
            usable, tuning.space, tuning.objective.k, layout.space.dimension, sample.size,
            fixed=current if tuning.apply is TuningApply.SEARCH_PARAMS else None,
            ignored=ignored, current=current,
        )  # fmt: skip
        seed = seed_defaults(usable[0] if current.index_type not in usable else current.index_type, space)
        runner = TrialRunner(tuning, current, space, sample, bench, first, seed=seed)

        def on_trial(progress: TuningStatus) -> None:
            self.write(progress)
            logger.info(f"tuning: {progress.message}")

        if not runner.run(status, on_trial, self.stopped.is_set):
            return None  # resumed by the next daemon, from the trials recorded
        if self.spec_changed(status.fingerprint, spec_layout):
            return None  # the next round starts the study the spec asks for now
        outcome = runner.conclude(status)
        if outcome.applied is not None:
            status.applied, status.applied_for = outcome.applied, serving_fingerprint(spec_layout)
        status.state, status.finished_at = TuningState.SUCCEEDED, self.now_utc()
        status.next_run_at = schedule.next_run(tuning, status.finished_at)
        self.write(status)
        kopf.info(self.body, reason=outcome.event, message=outcome.message)
        return None

    def spec_changed(self, fingerprint: str, spec_layout: CollectionLayout) -> bool:
        """Whether spec.tuning or the spec's index changed while the trials ran (nothing is
        concluded then, nor applied)."""
        fresh = read_custom_object(self.context.custom, self.namespace, PLURAL, self.name)
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return True
        spec = VectorCollectionSpec.model_validate(fresh["spec"])
        return spec.tuning is None or schedule.study_fingerprint(spec.tuning, layout_of(spec)) != fingerprint

    def fail(self, status: TuningStatus, message: str) -> None:
        status.state, status.message, status.finished_at = TuningState.FAILED, message, self.now_utc()
        self.write(status)
        kopf.warn(self.body, reason="TuningFailed", message=message)

    @staticmethod
    def now_utc() -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def tune_collection(
    context: OperatorContext,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    logger: logging.Logger | kopf.Logger,
) -> None:
    """The daemon's loop: a round, then a pause, until Kopf stops it (deletion, spec.tuning
    removed, operator exit)."""
    while not stopped:
        try:
            pause = TuningRound(context, body, stopped).run(logger)
        except Exception as error:  # one bad round must not end the daemon: log it, look again later
            logger.exception(f"tuning round failed: {error}")
            pause = RETRY_S
        stopped.wait(pause)
