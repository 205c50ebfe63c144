"""The standard condition, as every status of this API reports it (the shape of ``meta/v1``
Condition, so ``kubectl wait --for=condition=Ready`` and generic tooling understand it)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from vector_operator.api.model import ApiModel, list_type

CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
MAX_CONDITIONS = 16


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the object's current state."""

    type: str = Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)
    """Type of the condition in CamelCase, e.g. Ready; unique within the list."""
    status: ConditionStatus
    """Whether the condition holds: True, False or Unknown."""
    reason: str = Field(min_length=1, max_length=1024, pattern=REASON_PATTERN)
    """Why the condition has its status, as a CamelCase word a program can match on, e.g.
    MigrationRequired."""
    message: str = Field(default="", max_length=32768)
    """What happened and, when something needs a change, what to change, for a human."""
    last_transition_time: datetime
    """When the status last changed (not when the condition was last checked)."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation of the spec this condition was computed from."""


Conditions = Annotated[
    list[Condition],
    Field(max_length=MAX_CONDITIONS, json_schema_extra=list_type("map", "type")),
]
"""The conditions of a status, at most one per type."""
