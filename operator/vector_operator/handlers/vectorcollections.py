"""Kopf handlers for VectorCollection: thin. Create, update, resume and a periodic check each run
one reconcile (controller.collection_reconcile); a daemon runs the tuning study of a collection
with spec.tuning (controller.collection_tuning); deletion runs the finalizer
(controller.collection_deletion)."""

from __future__ import annotations

from typing import Any

import kopf

from vector_operator.api.resource import GROUP, VERSION
from vector_operator.controller.collection_deletion import DELETE_ATTEMPTS, RETRY_S, delete_collection
from vector_operator.controller.collection_reconcile import probe_due, reconcile_collection
from vector_operator.controller.collection_tuning import tune_collection
from vector_operator.controller.context import OperatorContext

PLURAL = "vectorcollections"
TUNING_STOP_S = 60.0
"""How long a stopping tuning daemon may take to finish its trial and drop its scratch collections
before Kopf cancels it (and as long again before it abandons it)."""


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    """Registers the VectorCollection handlers with the operator's settings."""
    resource = (GROUP, VERSION, PLURAL)
    settings = context.settings

    def on_change(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
        if reconcile_collection(context, body, patch, logger, probe=False) == "milvus_unavailable":
            # Retry soon; the periodic check repairs it too, should this give up.
            raise kopf.TemporaryError("Milvus unavailable", delay=RETRY_S)

    def on_timer(
        body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, status: kopf.Status, **_: Any
    ) -> None:
        reconcile_collection(context, body, patch, logger, probe=probe_due(status, settings.probe_interval_s))

    def on_tuning(body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any) -> None:
        tune_collection(context, body, stopped, logger)

    def on_delete(body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any) -> None:
        delete_collection(context, body, retry, logger)

    kopf.on.create(*resource, registry=registry, id="reconcile")(on_change)
    kopf.on.update(*resource, registry=registry, id="reconcile", field="spec")(on_change)
    kopf.on.resume(*resource, registry=registry, id="reconcile")(on_change)
    kopf.timer(
        *resource,
        registry=registry,
        id="check",
        interval=settings.check_interval_s,
        initial_delay=settings.check_interval_s,
    )(on_timer)
    kopf.daemon(
        *resource,
        registry=registry,
        id="tuning",
        when=lambda spec, **_: spec.get("tuning") is not None,
        cancellation_backoff=TUNING_STOP_S,  # asked to stop, it ends after the trial it measures
        cancellation_timeout=TUNING_STOP_S,
    )(on_tuning)
    kopf.on.delete(*resource, registry=registry, id="cleanup", retries=DELETE_ATTEMPTS)(on_delete)
