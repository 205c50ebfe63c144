"""The CustomResourceDefinitions, generated from the pydantic models (the one source of truth).

Pydantic writes JSON Schema (2020-12 flavoured: ``$ref`` into ``$defs``, ``anyOf`` with ``null``
for optional fields, titles). Kubernetes wants a *structural* OpenAPI v3 schema: every node
typed, no references, no ``anyOf`` except for int-or-string, and — for ``kubectl explain`` — a
description on every field. :func:`structural_schema` converts, and refuses (with
:class:`SchemaError`) a model that cannot become one, so a mistake shows up in ``make manifests``
and the unit tests rather than in a cluster.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

from vector_operator.api.migrationplan import KIND as MIGRATION_PLAN
from vector_operator.api.model import JsonDict
from vector_operator.api.resource import CATEGORY, GROUP, VERSION, ResourceKind
from vector_operator.api.rollbackpolicy import KIND as ROLLBACK_POLICY
from vector_operator.api.vectorcollection import KIND as VECTOR_COLLECTION

KINDS: tuple[ResourceKind, ...] = (VECTOR_COLLECTION, MIGRATION_PLAN, ROLLBACK_POLICY)

# Keywords a structural schema of ours may carry, in the order they are written out.
KEYWORD_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "anyOf",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)
RULE_KEY_ORDER = ("rule", "message", "messageExpression", "fieldPath", "reason")
_DROPPED = ("title",)
_NULL = {"type": "null"}


class SchemaError(ValueError):
    """A model cannot be expressed as a structural schema; the message names the path."""


class _DefaultsFromFactories(GenerateJsonSchema):
    """Also emits defaults that come from a ``default_factory``. A nested model's default is written
    out in full (its own defaults included): the API server validates a default as it stands,
    without first filling in the defaults below it."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        value = factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json", by_alias=True, exclude_none=True)
        return NoDefault if value is None else value


def structural_schema(model: type[BaseModel], description: str | None = None) -> JsonDict:
    """The structural OpenAPI v3 schema of ``model``, with ``description`` (default: the model's
    docstring) at its root."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_DefaultsFromFactories)
    defs = raw.pop("$defs", {})
    schema = _convert(raw, defs, path=model.__name__)
    if description is not None:
        schema["description"] = _prose(description)
    _check(schema, path=model.__name__)
    return schema


def custom_resource_definition(kind: ResourceKind) -> JsonDict:
    """The CustomResourceDefinition of one kind, as a dict ready for YAML."""
    spec = structural_schema(kind.spec)
    status = structural_schema(kind.status)
    status["properties"]["kopf"]["x-kubernetes-preserve-unknown-fields"] = True
    root: JsonDict = {
        "description": _prose(kind.description),
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an "
                "object: vectors.aios.dev/v1alpha1.",
                "type": "string",
            },
            "kind": {
                "description": f"Kind is the REST resource this object represents: {kind.kind}.",
                "type": "string",
            },
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {
                "app.kubernetes.io/name": "vector-operator",
                "app.kubernetes.io/part-of": "vector-operator",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": column.name,
                            "type": column.type,
                            "jsonPath": column.json_path,
                            "description": column.description,
                            **({"priority": column.priority} if column.priority else {}),
                        }
                        for column in kind.printer_columns
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def custom_resource_definitions() -> list[JsonDict]:
    """The CustomResourceDefinitions of every kind of the API group."""
    return [custom_resource_definition(kind) for kind in KINDS]


def walk(schema: JsonDict, path: str = "") -> Iterator[tuple[str, JsonDict]]:
    """Every schema node below and including ``schema``, with its dotted path."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


# -- conversion --------------------------------------------------------------------------------


def _convert(node: JsonDict, defs: JsonDict, path: str) -> JsonDict:
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = _overlay(_convert(target, defs, path), node)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        options = [option for option in node.pop("anyOf") if option != _NULL]
        if len(options) != 1:
            raise SchemaError(f"{path}: a union of {len(options)} types has no structural schema")
        node = _overlay(_convert(options[0], defs, path), node)
    for key in ("allOf", "oneOf", "not", "const", "$defs"):
        if key in node:
            raise SchemaError(f"{path}: {key!r} has no place in a structural schema")
    for key in _DROPPED:
        node.pop(key, None)
    if node.get("default", NoDefault) is None:
        del node["default"]
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if "description" in node:
        node["description"] = _prose(node["description"])
        default = node.get("default")
        if (
            isinstance(default, bool | int | float | str)
            and default != ""
            and "Default" not in node["description"]
        ):
            # kubectl explain shows enums but not defaults.
            node["description"] += f" Default: {json.dumps(default)}."
    if "x-kubernetes-validations" in node:
        node["x-kubernetes-validations"] = [
            {key: rule[key] for key in RULE_KEY_ORDER if key in rule}
            for rule in node["x-kubernetes-validations"]
        ]
    if "properties" in node:
        node["properties"] = {
            name: _convert(child, defs, f"{path}.{name}") for name, child in node["properties"].items()
        }
    if isinstance(node.get("items"), dict):
        node["items"] = _convert(node["items"], defs, f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _convert(node["additionalProperties"], defs, f"{path}{{}}")
    return _ordered(node)


def _overlay(base: JsonDict, over: JsonDict) -> JsonDict:
    """``base`` (a referenced or unwrapped schema) with the keywords of the referring node on top;
    CEL rules of both are kept."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key == "anyOf":
            continue
        if key == "x-kubernetes-validations":
            out[key] = [*out.get(key, []), *value]
        else:
            out[key] = value
    return out


def _ordered(node: JsonDict) -> JsonDict:
    unknown = set(node) - set(KEYWORD_ORDER)
    if unknown:
        raise SchemaError(f"unexpected schema keywords {sorted(unknown)}")
    return {key: node[key] for key in KEYWORD_ORDER if key in node}


def _prose(text: str) -> str:
    """A docstring as one line per paragraph (``kubectl explain`` wraps lines itself)."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


# -- checks ------------------------------------------------------------------------------------


def _check(schema: JsonDict, path: str) -> None:
    for where, node in walk(schema, path):
        typed = "type" in node or node.get("x-kubernetes-int-or-string")
        if not typed and not node.get("x-kubernetes-preserve-unknown-fields"):
            raise SchemaError(f"{where}: every schema node needs a type")
        if node.get("type") == "array":
            if "x-kubernetes-list-type" not in node:
                raise SchemaError(f"{where}: a list needs x-kubernetes-list-type (atomic, set or map)")
            if "maxItems" not in node:
                raise SchemaError(f"{where}: a list needs maxItems (CEL cost estimates depend on it)")
        for name, child in node.get("properties", {}).items():
            if not child.get("description"):
                raise SchemaError(f"{where}.{name}: every field needs a description (kubectl explain)")
