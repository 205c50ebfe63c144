"""Kubernetes types the specs embed: references to objects and Secret keys, label selectors and
the parts of a pod template a Job may override. Shaped like their ``core/v1`` and ``meta/v1``
namesakes, so they read the same in a manifest."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from vector_operator.api.model import ApiModel, Quantity, Rule, list_type, validations

# An object name in a namespace (RFC 1123 subdomain), the rule for Secrets and our resources.
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DATA_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"


class LocalObjectReference(ApiModel):
    """A reference to an object of a known kind in the same namespace, by name."""

    name: str = Field(min_length=1, max_length=253, pattern=OBJECT_NAME_PATTERN)
    """Name of the object, in this object's namespace."""


class SecretKeyReference(ApiModel):
    """A key of a Secret in the same namespace. Its value is read by the operator and its Jobs
    and never appears in logs, Events or status."""

    name: str = Field(min_length=1, max_length=253, pattern=OBJECT_NAME_PATTERN)
    """Name of the Secret, in this object's namespace."""
    key: str = Field(min_length=1, max_length=253, pattern=DATA_KEY_PATTERN)
    """Key within the Secret's data."""


class LabelSelectorOperator(StrEnum):
    """How a label selector requirement compares a label's value."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ApiModel):
    """One requirement of a label selector: a key, an operator and (for In, NotIn) values."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) "
                ": (!has(self.values) || size(self.values) == 0)",
                message="values must be non-empty for the operators In and NotIn, and empty for Exists "
                "and DoesNotExist",
            )
        )
    )

    key: str = Field(min_length=1, max_length=317)
    """The label key the requirement applies to."""
    operator: LabelSelectorOperator
    """How the label's value is compared: In, NotIn, Exists or DoesNotExist."""
    values: list[str] | None = Field(default=None, max_length=64, json_schema_extra=list_type("atomic"))
    """The values for In and NotIn; must be empty for Exists and DoesNotExist."""


class LabelSelector(ApiModel):
    """A label selector, as in a Deployment: an object matches when all of matchLabels and
    matchExpressions hold. An empty selector ({}) matches every object."""

    match_labels: dict[str, str] | None = Field(default=None, max_length=64)
    """Labels an object must carry, each with exactly this value."""
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, max_length=32, json_schema_extra=list_type("atomic")
    )
    """Requirements on labels an object must meet, all of them."""


class TolerationOperator(StrEnum):
    """How a toleration matches a taint's value."""

    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    """The taint effect a toleration matches."""

    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(ApiModel):
    """A toleration for the Job pods, as in a Pod spec."""

    key: str | None = Field(default=None, max_length=317)
    """The taint key the toleration applies to; empty with operator Exists matches every taint."""
    operator: TolerationOperator | None = None
    """Exists (any value) or Equal (the given value); Kubernetes defaults to Equal."""
    value: str | None = Field(default=None, max_length=63)
    """The taint value to match with operator Equal."""
    effect: TaintEffect | None = None
    """The taint effect to match; empty matches all effects."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """For NoExecute: how long a pod stays bound after the taint appears; unset means forever."""


class ResourceRequirements(ApiModel):
    """CPU, memory and other resources for a Job's worker container, as in a Pod spec."""

    requests: dict[str, Quantity] | None = Field(default=None, max_length=16)
    """Resources the scheduler reserves, e.g. {cpu: "2", memory: 4Gi}."""
    limits: dict[str, Quantity] | None = Field(default=None, max_length=16)
    """Upper bounds the container may not exceed, e.g. {memory: 6Gi}."""


class ObjectMeta(ApiModel):
    """The object metadata the operator reads. Other fields the API server sets (uid,
    managedFields, ...) are kept as they are."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    """Name of the object, unique in its namespace."""
    namespace: str | None = None
    """Namespace of the object."""
    labels: dict[str, str] | None = None
    """Labels of the object."""
    annotations: dict[str, str] | None = None
    """Annotations of the object."""
    generation: int | None = None
    """Generation of the spec, bumped by the API server on every spec change."""
    creation_timestamp: datetime | None = None
    """When the object was created."""


__all__ = [
    "OBJECT_NAME_PATTERN",
    "LabelSelector",
    "LabelSelectorOperator",
    "LabelSelectorRequirement",
    "LocalObjectReference",
    "ObjectMeta",
    "ResourceRequirements",
    "SecretKeyReference",
    "TaintEffect",
    "Toleration",
    "TolerationOperator",
]
