"""How an API type declares itself: the base model and the schema annotations Kubernetes reads.

Every spec and status type derives from :class:`ApiModel`: camelCase field names on the wire
(``model_validate(manifest)`` and ``model_dump(by_alias=True)`` speak the manifest's language),
snake_case in Python, attribute docstrings as the field descriptions that ``kubectl explain``
shows, and unknown fields refused (the API server prunes them, so one here is a typo).

The annotations carry what a JSON schema alone cannot say to the API server: CEL rules
(``x-kubernetes-validations``), list semantics for server-side apply, and escape hatches such as
int-or-string quantities. :mod:`vector_operator.api.crd` turns the result into structural schemas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

JsonDict = dict[str, Any]

# Reasons the API server accepts for a CEL rule; they decide how kubectl words the error
# ("Invalid value", "Required value", "Forbidden", "Duplicate value").
RuleReason = Literal["FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden", "FieldValueDuplicate"]


class ApiModel(BaseModel):
    """Base of every spec and status type of the vectors.aios.dev API."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="forbid",
        validate_default=False,
    )


@dataclass(frozen=True)
class Rule:
    """One CEL validation rule, as the API server evaluates it on the object it is attached to.

    ``message`` is shown verbatim; ``message_expression`` is a CEL string expression evaluated
    on failure (to quote the offending values) and falls back to ``message`` should it fail.
    ``field_path`` points the error at a field below ``self`` (e.g. ``.params.nlist``).
    """

    rule: str
    message: str
    message_expression: str | None = None
    field_path: str | None = None
    reason: RuleReason | None = None

    def to_json(self) -> JsonDict:
        out: JsonDict = {"rule": self.rule, "message": self.message}
        if self.message_expression is not None:
            out["messageExpression"] = self.message_expression
        if self.field_path is not None:
            out["fieldPath"] = self.field_path
        if self.reason is not None:
            out["reason"] = self.reason
        return out


# A Go-style duration of whole units: 30s, 5m, 1h, 1h30m.
DURATION_RE = "^([0-9]+(ms|s|m|h))+$"


def duration_rule(what: str) -> Rule:
    """CEL: the string field is a duration such as 30s, 5m, 1h or 1h30m."""
    return Rule(
        rule=f"self.matches('{DURATION_RE}')",
        message=f"{what} must be a duration such as 30s, 5m, 1h or 1h30m",
        message_expression=f"'{what} \"' + self + '\" is not a duration: write it like 30s, 5m, 1h or 1h30m'",
    )


def validations(*rules: Rule) -> JsonDict:
    """Schema keywords attaching CEL ``rules``: for ``ConfigDict(json_schema_extra=...)`` of a model
    (rules over the whole object) or ``Field(json_schema_extra=...)`` of one field."""
    return {"x-kubernetes-validations": [r.to_json() for r in rules]}


def list_type(kind: Literal["atomic", "set", "map"], *map_keys: str) -> JsonDict:
    """Schema keywords for a list's merge semantics under server-side apply: ``atomic`` (replaced
    whole, order matters), ``set`` (unique scalars) or ``map`` (items keyed by ``map_keys``, which
    the API server then also keeps unique)."""
    if (kind == "map") != bool(map_keys):
        raise ValueError("map_keys are required for list type 'map' and only for it")
    out: JsonDict = {"x-kubernetes-list-type": kind}
    if map_keys:
        out["x-kubernetes-list-map-keys"] = list(map_keys)
    return out


def merged(*extras: JsonDict) -> JsonDict:
    """Several schema-keyword dicts as one (CEL rules are concatenated)."""
    out: JsonDict = {}
    for extra in extras:
        for key, value in extra.items():
            if key == "x-kubernetes-validations":
                out.setdefault(key, []).extend(value)
            else:
                out[key] = value
    return out


QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity (``2``, ``500m``, ``4Gi``), as in a Pod's resources."""

_QUANTITY_SUFFIXES = {
    **{
        suffix: Decimal(1024) ** power
        for power, suffix in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))
    },
    **{"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal("1e3")},
    **{
        "M": Decimal("1e6"),
        "G": Decimal("1e9"),
        "T": Decimal("1e12"),
        "P": Decimal("1e15"),
        "E": Decimal("1e18"),
    },
}


def parse_quantity(quantity: int | str) -> Decimal:
    """The number a quantity stands for (``500m`` -> 0.5, ``4Gi`` -> 4294967296, ``1e3`` -> 1000).
    Raises ValueError for text that is not a quantity."""
    text = str(quantity).strip()
    if re.fullmatch(QUANTITY_PATTERN, text) is None:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
    for suffix in sorted(_QUANTITY_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * _QUANTITY_SUFFIXES[suffix]
    return Decimal(text)


PreservedObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""An object the API server keeps as written, unknown fields included."""


def milvus_name_rule(what: str, example: str) -> Rule:
    """The CEL rule for a Milvus identifier (collection, alias, field or database name): letters,
    digits and underscores, starting with a letter or an underscore."""
    return Rule(
        rule="self.matches('^[A-Za-z_][A-Za-z0-9_]*$')",
        message=(
            f"{what} must be a Milvus name: start with a letter or an underscore, then only letters, "
            f'digits and underscores (no "-" or "."), e.g. {example}'
        ),
        message_expression=(
            f"'{what} \"' + self + '\" is not a Milvus name: start with a letter or an underscore, "
            f'then only letters, digits and underscores (no "-" or "."), e.g. {example}\''
        ),
    )


def milvus_name(what: str, example: str, *, max_length: int = 255, default: str | None = None) -> Any:
    """A field holding a Milvus identifier (see :func:`milvus_name_rule`) of at most ``max_length``
    characters. Required unless a ``default`` is given."""
    extra = validations(milvus_name_rule(what, example))
    if default is None:
        return Field(min_length=1, max_length=max_length, json_schema_extra=extra)
    return Field(default, min_length=1, max_length=max_length, json_schema_extra=extra)
