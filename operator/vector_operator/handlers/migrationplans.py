"""Kopf handlers for MigrationPlan: thin. A change of the spec, the operator's start, one of its
batch Jobs finishing, its target VectorCollection becoming Ready, and a timer each run one step
(controller.plan_step: observe -> decide -> apply); the timer runs only while the plan has
something to do or something scheduled, and a tick with nothing due reads nothing."""

from __future__ import annotations

import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from vector_operator.api.migrationplan import MigrationPlanSpec, MigrationPlanStatus
from vector_operator.api.resource import GROUP, VERSION
from vector_operator.controller.context import OperatorContext
from vector_operator.controller.job_completion import JobCompletions
from vector_operator.controller.plan_deletion import delete_plan
from vector_operator.controller.plan_step import step_plan
from vector_operator.controller.target_readiness import TargetReadiness
from vector_operator.migration import schedule
from vector_operator.migration.batch_jobs import MANAGED_BY, MANAGED_BY_LABEL

PLURAL = "migrationplans"


def _typed(body: kopf.Body) -> tuple[MigrationPlanSpec, MigrationPlanStatus] | None:
    try:
        return MigrationPlanSpec.model_validate(dict(body.spec)), MigrationPlanStatus.model_validate(
            dict(body.status)
        )
    except ValidationError:
        return None  # the step itself reports it


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    resource = (GROUP, VERSION, PLURAL)
    settings = context.settings

    def on_change(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        step_plan(
            context, str(body.metadata.namespace), str(body.metadata.name), str(body.metadata.uid), logger
        )

    def on_tick(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        typed, now = _typed(body), datetime.datetime.now(datetime.UTC)
        if typed is None or schedule.step_due(*typed, now, settings.probe_interval_s):
            on_change(body=body, logger=logger)

    def timer_wanted(body: kopf.Body, **_: Any) -> bool:
        typed = _typed(body)
        return typed is None or schedule.needs_timer(*typed, datetime.datetime.now(datetime.UTC))

    def on_delete(body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any) -> None:
        delete_plan(context, body, retry, logger)

    completions = JobCompletions(context)

    def on_job_event(body: kopf.Body, logger: kopf.Logger, **kwargs: Any) -> None:
        completions.on_event(kwargs.get("type"), body, logger)  # the watch event's type

    readiness = TargetReadiness(context)

    def on_target_event(body: kopf.Body, logger: kopf.Logger, **kwargs: Any) -> None:
        readiness.on_event(kwargs.get("type"), body, logger)

    kopf.on.create(*resource, registry=registry, id="step")(on_change)
    kopf.on.update(*resource, registry=registry, id="step", field="spec")(on_change)
    kopf.on.resume(*resource, registry=registry, id="step")(on_change)
    kopf.timer(*resource, registry=registry, id="tick", interval=settings.plan_interval_s, when=timer_wanted)(
        on_tick
    )
    kopf.on.delete(*resource, registry=registry, id="cleanup", retries=6)(on_delete)
    kopf.on.event(
        "batch", "v1", "jobs", registry=registry, id="job-finished", labels={MANAGED_BY_LABEL: MANAGED_BY}
    )(on_job_event)
    kopf.on.event(GROUP, VERSION, "vectorcollections", registry=registry, id="target-ready")(on_target_event)
