"""A VectorCollection that becomes Ready steps the plans waiting for it at once, instead of on their
next timer tick: a collection and its plan applied together (a quickstart, a GitOps sync) start
filling as soon as the collection serves."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import kopf

from vector_operator.controller.context import OperatorContext
from vector_operator.controller.plan_step import step_plan
from vector_operator.kube import plans

READY_PHASE = "Ready"


class TargetReadiness:
    def __init__(self, context: OperatorContext) -> None:
        self._context = context
        self._ready: set[str] = set()
        self._guard = threading.Lock()

    def _became_ready(self, uid: str, ready: bool, gone: bool) -> bool:
        with self._guard:
            was = uid in self._ready
            if ready and not gone:
                self._ready.add(uid)
            else:
                self._ready.discard(uid)
            return ready and not gone and not was

    def on_event(
        self, event_type: str | None, collection: Mapping[str, Any], logger: logging.Logger | kopf.Logger
    ) -> None:
        """``event_type`` None is the listing at the operator's start: the plans resume on their own."""
        metadata = collection.get("metadata") or {}
        ready = (collection.get("status") or {}).get("phase") == READY_PHASE
        became = self._became_ready(str(metadata.get("uid")), ready, event_type == "DELETED")
        if event_type is None or not became or metadata.get("deletionTimestamp"):
            return
        namespace = str(metadata.get("namespace"))
        for name, uid in plans.waiting_for_target(self._context.custom, namespace, str(metadata.get("name"))):
            step_plan(self._context, namespace, name, uid, logger)
