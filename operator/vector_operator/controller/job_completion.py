"""A batch Job that finished steps its plan at once, instead of on the plan's next timer tick: the
next Job starts, or validation begins, as soon as the Job controller marks the Job Complete or
Failed. Each finished Job steps its plan once (the Job is modified again after it finished, e.g.
by the TTL controller); the timer stays the fallback for anything missed."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import kopf

from vector_operator.api.resource import API_VERSION
from vector_operator.controller.context import OperatorContext
from vector_operator.controller.plan_step import step_plan
from vector_operator.kube.jobs import job_state
from vector_operator.migration.observation import JobState

REMEMBERED = 4096
"""Finished Jobs remembered as already handled (oldest forgotten first)."""


def owning_plan(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """The name and uid of the MigrationPlan that controls ``job``; None for any other Job."""
    for owner in (job.get("metadata") or {}).get("ownerReferences") or []:
        if (
            owner.get("controller")
            and owner.get("kind") == "MigrationPlan"
            and owner.get("apiVersion") == API_VERSION
        ):
            return str(owner["name"]), str(owner["uid"])
    return None


class JobCompletions:
    def __init__(self, context: OperatorContext) -> None:
        self._context = context
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._guard = threading.Lock()

    def _first_time(self, uid: str) -> bool:
        with self._guard:
            if uid in self._handled:
                return False
            self._handled[uid] = None
            while len(self._handled) > REMEMBERED:
                self._handled.popitem(last=False)
            return True

    def on_event(
        self, event_type: str | None, job: Mapping[str, Any], logger: logging.Logger | kopf.Logger
    ) -> None:
        """``event_type`` None is the listing at the operator's start: the plans resume on their own."""
        if event_type != "MODIFIED" or job_state(job) is JobState.RUNNING:
            return
        owner = owning_plan(job)
        metadata = job.get("metadata") or {}
        if owner is None or not self._first_time(str(metadata.get("uid"))):
            return
        name, uid = owner
        step_plan(self._context, str(metadata.get("namespace")), name, uid, logger)
