"""`kubectl vector lint FILE`: validates manifests offline against the CRDs this package generates:
the structural schema (types, required fields, enums, bounds, patterns, unknown fields, list
uniqueness) and every CEL rule (evaluated with cel-python), with the API server's wording, so a
mistake shows up before `kubectl apply` and reads the same. Rules on transitions (oldSelf) need
the stored object and are left to the API server."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from vector_operator.api.crd import custom_resource_definitions
from vector_operator.api.resource import API_VERSION

Json = dict[str, Any]
_REASONS = {
    "FieldValueRequired": "Required value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueDuplicate": "Duplicate value",
}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@cache
def _schemas() -> dict[str, Json]:
    found = {}
    for crd in custom_resource_definitions():
        version = crd["spec"]["versions"][0]
        found[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return found


def _index_of(items: celtypes.ListType, value: Any) -> celtypes.IntType:
    """The Kubernetes CEL list library's indexOf."""
    return celtypes.IntType(list(items).index(value) if value in items else -1)


@cache
def _program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule), functions={"indexOf": _index_of})


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        return '"object"' if isinstance(value, dict) else json.dumps(value, separators=(",", ":"))
    return json.dumps(value)


def _bounds(schema: Json, value: Any, path: str) -> Iterator[Problem]:
    invalid = f"Invalid value: {_shown(value)}: {path} in body"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield Problem(path, f"{invalid} should be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            yield Problem(path, f"{invalid} should be less than or equal to {schema['maximum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value.encode()) > schema["maxLength"]:
            yield Problem(path, f"Too long: may not be more than {schema['maxLength']} bytes")
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield Problem(path, f"{invalid} should be at least {schema['minLength']} chars long")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield Problem(path, f"{invalid} should match '{schema['pattern']}'")
        if "enum" in schema and value not in schema["enum"]:
            supported = ", ".join(f'"{v}"' for v in schema["enum"])
            yield Problem(path, f'Unsupported value: "{value}": supported values: {supported}')
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            minimum = schema["minItems"]
            yield Problem(
                path, f"Invalid value: {len(value)}: {path} in body should have at least {minimum} items"
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield Problem(path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items")
        yield from _unique(schema, value, path)
    if isinstance(value, dict) and "maxProperties" in schema and len(value) > schema["maxProperties"]:
        yield Problem(path, f"Too many: {len(value)}: must have at most {schema['maxProperties']} items")


def _unique(schema: Json, value: list[Any], path: str) -> Iterator[Problem]:
    kind, keys = schema.get("x-kubernetes-list-type"), schema.get("x-kubernetes-list-map-keys") or []
    seen: set[str] = set()
    for index, item in enumerate(value):
        identity = {key: item.get(key) for key in keys} if kind == "map" and isinstance(item, dict) else item
        marker = json.dumps(identity, sort_keys=True)
        if kind in ("map", "set") and marker in seen:
            yield Problem(
                f"{path}[{index}]", f"Duplicate value: {json.dumps(identity, separators=(',', ':'))}"
            )
        seen.add(marker)


def _type_matches(schema: Json, value: Any) -> bool:
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    checks = {
        "object": lambda: isinstance(value, dict),
        "array": lambda: isinstance(value, list),
        "string": lambda: isinstance(value, str),
        "integer": lambda: isinstance(value, int) and not isinstance(value, bool),
        "number": lambda: isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": lambda: isinstance(value, bool),
    }
    return expected is None or checks[expected]()


def _typed(schema: Json, value: Any) -> Any:
    """``value`` with every number the schema declares a number made a double, as the API server
    hands it to CEL (which never compares an int with a double)."""
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        properties, extra = schema.get("properties") or {}, schema.get("additionalProperties")
        return {
            k: _typed(properties.get(k) or (extra if isinstance(extra, dict) else {}), v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_typed(schema.get("items") or {}, item) for item in value]
    return value


def _rules(schema: Json, value: Any, path: str) -> Iterator[Problem]:
    for rule in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" in rule["rule"]:
            continue
        activation = {"self": json_to_cel(_typed(schema, value))}
        try:
            holds = bool(_program(rule["rule"]).evaluate(activation))
        except CELEvalError:
            continue  # a rule this evaluator cannot judge is the API server's to judge
        if holds:
            continue
        message = rule["message"]
        if "messageExpression" in rule:
            with contextlib.suppress(CELEvalError):  # the plain message stands in, as on the API server
                message = str(_program(rule["messageExpression"]).evaluate(activation))
        where = path + rule.get("fieldPath", "")
        # The API server shows the value only for a rule on the field itself.
        invalid = "Invalid value" if "fieldPath" in rule else f"Invalid value: {_shown(value)}"
        kind = _REASONS.get(rule.get("reason", ""), invalid)
        yield Problem(where, f"{kind}: {message}")


def _walk(schema: Json, value: Any, path: str) -> Iterator[Problem]:
    if not _type_matches(schema, value):
        yield Problem(
            path, f"Invalid value: {_shown(value)}: {path} in body must be of type {schema.get('type')}"
        )
        return
    yield from _bounds(schema, value, path)
    if isinstance(value, dict) and "properties" in schema:
        for required in schema.get("required") or []:
            if required not in value:
                yield Problem(f"{path}.{required}".lstrip("."), "Required value")
        for key, item in value.items():
            child = schema["properties"].get(key)
            if child is None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                yield Problem("", f'unknown field "{f"{path}.{key}".lstrip(".")}"')
            elif child is not None:
                yield from _walk(child, item, f"{path}.{key}".lstrip("."))
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            yield from _walk(schema["additionalProperties"], item, f"{path}[{key}]")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _walk(schema["items"], item, f"{path}[{index}]")
    yield from _rules(schema, value, path)


def defaulted(schema: Json, value: Any) -> Any:
    """``value`` with the schema's defaults filled in, as the API server does before validating."""
    if isinstance(value, dict) and "properties" in schema:
        filled = dict(value)
        for key, child in schema["properties"].items():
            if key not in filled and "default" in child:
                filled[key] = child["default"]
            if key in filled:
                filled[key] = defaulted(child, filled[key])
        return filled
    if isinstance(value, list) and "items" in schema:
        return [defaulted(schema["items"], item) for item in value]
    return value


def lint(document: Json) -> list[Problem]:
    """The problems of one manifest; [] for a valid one (or one of another API group)."""
    kind = document.get("kind")
    if document.get("apiVersion") != API_VERSION or kind not in _schemas():
        return []
    spec_schema = _schemas()[kind]["properties"]["spec"]
    root = {"type": "object", "properties": {"spec": spec_schema}, "required": ["spec"]}
    body = {"spec": document["spec"]} if "spec" in document else {}
    return list(_walk(root, defaulted(root, body), ""))
