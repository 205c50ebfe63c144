"""When a RollbackPolicy fires. Pure: the plan controller gathers what the plan shows, this
module decides.

Per-batch metrics (coherence, failureRate, processingTimeMs) are read batch by batch while the plan
is Generating, so `forBatches: N` means N consecutive finished batches crossed the threshold; in
the later phases the collection-level figures are read (the plan's coherence, validation's recall@k
and search latency; after the cutover, recall@k and search latency measured on the new collection
itself). `forDuration` holds a trigger back until its threshold stayed crossed that long.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vector_operator.api.kubernetes_types import LabelSelector
from vector_operator.api.migrationplan import BatchMetrics
from vector_operator.api.rollbackpolicy import RollbackPolicySpec, Trigger, TriggerMetric

BATCH_METRICS = {
    TriggerMetric.COHERENCE: "coherence",
    TriggerMetric.FAILURE_RATE: "failure_rate",
    TriggerMetric.PROCESSING_TIME_MS: "processing_time_ms",
}


@dataclass(frozen=True)
class Observation:
    """What a plan shows a policy at one moment."""

    phase: str  # Generating, Validating, CuttingOver or PostCutover
    recent_batches: Sequence[BatchMetrics]  # finished batches, in the order they finished
    figures: Mapping[str, float]  # collection-level values by trigger metric name
    now: datetime.datetime


@dataclass(frozen=True)
class Firing:
    policy: str
    trigger: str
    metric: str
    threshold: float
    observed: float


def describe(trigger: Trigger) -> str:
    """E.g. "coherence below 0.85 for 2 batches"."""
    direction = f"below {trigger.below:g}" if trigger.below is not None else f"above {trigger.above:g}"
    text = f"{trigger.metric.value} {direction}"
    if trigger.for_batches:
        text += f" for {trigger.for_batches} batch{'es' if trigger.for_batches > 1 else ''}"
    if trigger.for_duration:
        text += f" for {trigger.for_duration}"
    return text


def crosses(trigger: Trigger, value: float) -> bool:
    if trigger.below is not None:
        return value < trigger.below
    return trigger.above is not None and value > trigger.above


def parse_duration(text: str) -> datetime.timedelta:
    """Go-style durations of whole units: 30s, 5m, 1h30m, 250ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return datetime.timedelta(
        seconds=sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)(ms|s|m|h)", text))
    )


def evaluate(
    policy: str, spec: RollbackPolicySpec, observation: Observation, since: Mapping[str, datetime.datetime]
) -> tuple[Firing | None, dict[str, datetime.datetime]]:
    """The first trigger that fires now (if any), and the updated crossing-since times."""
    updated = dict(since)
    for index, trigger in enumerate(spec.triggers):
        key = f"{policy}/{index}"
        if trigger.phases is not None and observation.phase not in {p.value for p in trigger.phases}:
            updated.pop(key, None)
            continue
        value, crossing = _current(trigger, observation)
        if value is None or not crossing:
            updated.pop(key, None)
            continue
        if trigger.for_duration:
            started = updated.setdefault(key, observation.now)
            if observation.now - started < parse_duration(trigger.for_duration):
                continue
        threshold = trigger.below if trigger.below is not None else trigger.above
        assert threshold is not None  # the schema demands exactly one
        return Firing(policy, describe(trigger), trigger.metric.value, threshold, value), updated
    return None, updated


def _current(trigger: Trigger, observation: Observation) -> tuple[float | None, bool]:
    """The value to judge now and whether it crosses (for forBatches: all of the last N)."""
    field = BATCH_METRICS.get(trigger.metric)
    if field is not None and observation.phase == "Generating":
        found = (getattr(batch, field) for batch in observation.recent_batches)
        values = [float(value) for value in found if value is not None]
        needed = trigger.for_batches or 1
        if len(values) < needed:
            return (values[-1] if values else None), False
        window = values[-needed:]
        crossing = all(crosses(trigger, v) for v in window)
        # The value reported: the worst of the window.
        worst = min(window) if trigger.below is not None else max(window)
        return worst, crossing
    value = observation.figures.get(trigger.metric.value)
    if value is None:
        return None, False
    return value, crosses(trigger, value)


def selects(
    selector: LabelSelector | None, names: Sequence[str] | None, plan: str, labels: Mapping[str, str]
) -> bool:
    """Whether a policy with this selector and these planNames guards the plan."""
    if names and plan in names:
        return True
    if selector is None:
        return False
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.match_expressions or []:
        operator = requirement.operator.value
        present = requirement.key in labels
        values = set(requirement.values or [])
        if operator == "In" and (not present or labels[requirement.key] not in values):
            return False
        if operator == "NotIn" and present and labels[requirement.key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
