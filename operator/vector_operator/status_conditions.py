"""Conditions, merged the Kubernetes way.

`lastTransitionTime` moves only when a condition's status flips; reason, message and
observedGeneration follow every update. Pure. The typed form (:func:`merge_conditions`) serves
the MigrationPlan controller, which writes its whole typed status; the dict form
(:func:`merged_conditions`) serves handlers that patch through Kopf, against the freshest object,
so a concurrent writer's conditions are never clobbered.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vector_operator.api.conditions import MAX_CONDITIONS, Condition, ConditionStatus

ConditionStatusText = Literal["True", "False", "Unknown"]
MAX_MESSAGE = 32768


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: ConditionStatusText
    reason: str
    message: str = ""

    @classmethod
    def of(cls, type_: str, holds: bool, reason: str, message: str = "") -> ConditionUpdate:
        return cls(type_, "True" if holds else "False", reason, message)


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def whole_seconds(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC without its fraction of a second, as Kubernetes writes times."""
    return moment.astimezone(datetime.UTC).replace(microsecond=0)


def merge_conditions(
    current: Sequence[Condition] | None,
    updates: Iterable[ConditionUpdate],
    generation: int | None,
    now: datetime.datetime,
) -> list[Condition]:
    """The condition list after `updates`: existing types keep their place, new ones follow."""
    merged: dict[str, Condition] = {condition.type: condition for condition in current or []}
    for update in updates:
        previous = merged.get(update.type)
        flipped = previous is None or previous.status.value != update.status
        merged[update.type] = Condition(
            type=update.type,
            status=ConditionStatus(update.status),
            reason=update.reason,
            message=update.message[:MAX_MESSAGE],
            last_transition_time=whole_seconds(now)
            if flipped or previous is None
            else previous.last_transition_time,
            observed_generation=generation,
        )
    return list(merged.values())[-MAX_CONDITIONS:]


def merged_conditions(
    current: Sequence[Mapping[str, Any]] | None,
    updates: Iterable[ConditionUpdate],
    generation: int | None,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """:func:`merge_conditions` over the conditions as they appear in a manifest."""
    typed = [Condition.model_validate(condition) for condition in current or []]
    return [
        condition.model_dump(by_alias=True, mode="json", exclude_none=True)
        for condition in merge_conditions(typed, updates, generation, now)
    ]


def condition_in(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    """The condition `type_` of a raw status object (a copy), or {} when it has none."""
    return next((dict(c) for c in status.get("conditions") or [] if c.get("type") == type_), {})


def condition_status(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> str | None:
    """The status ("True", "False", "Unknown") of the condition `type_`, or None when absent."""
    for condition in conditions or []:
        if condition.get("type") == type_:
            return str(condition.get("status"))
    return None
