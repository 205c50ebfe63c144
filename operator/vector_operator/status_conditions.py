"""Conditions, merged the Kubernetes way.

`lastTransitionTime` moves only when a condition's status flips; reason, message and
observedGeneration follow every update. Pure: the handlers write the result with a JSON patch
against the freshest object, so a concurrent writer's conditions are never clobbered.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ConditionStatusText = Literal["True", "False", "Unknown"]


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


def merged_conditions(
    current: Sequence[Mapping[str, Any]] | None,
    updates: Iterable[ConditionUpdate],
    generation: int | None,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """The condition list after `updates`: existing types keep their place, new ones follow."""
    merged: dict[str, dict[str, Any]] = {str(c["type"]): dict(c) for c in current or []}
    for update in updates:
        previous = merged.get(update.type)
        flipped = previous is None or previous.get("status") != update.status
        condition: dict[str, Any] = {
            "type": update.type,
            "status": update.status,
            "reason": update.reason,
            "message": update.message[:32768],
            "lastTransitionTime": (
                timestamp(now) if flipped or previous is None else previous["lastTransitionTime"]
            ),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        merged[update.type] = condition
    return list(merged.values())


def condition_status(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> str | None:
    """The status ("True", "False", "Unknown") of the condition `type_`, or None when absent."""
    for condition in conditions or []:
        if condition.get("type") == type_:
            return str(condition.get("status"))
    return None
