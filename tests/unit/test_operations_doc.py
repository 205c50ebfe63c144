"""docs/operations.md names every condition reason the operator writes, so an SRE who reads one in
`kubectl describe` finds what it means and what to do.

The reasons are collected from the sources: the string literals passed as a reason to the calls
that set conditions (``step.condition``, ``step.progressing``, ``step.fail``, ``Problem``,
``ConditionUpdate.of``), those assigned to a variable named for a reason (``reason = "A" if ... else
"B"``, ``why = ...``, ``x.conflict_reason = ...``) or appended to a list of reasons; the Event
reasons, written the same ways; the errors whose class name becomes the reason; and the worker's
result reasons (a failed batch shows one in ``status.failedRanges``).
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

from vector_operator.contract.result import Reason
from vector_operator.controller.plan_observer import REPORTED_BY_NAME

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "vector_operator"
GUIDE = ROOT / "docs" / "operations.md"

# call name -> position of the reason argument
REASON_ARGUMENT = {
    "condition": 2,
    "progressing": 0,
    "fail": 0,
    "Problem": 0,
    "PlanningRefused": 0,
    "EffectRefused": 0,
    "_stop": 2,
    "fold_failure": 2,
    "of": 2,
    "event": 0,
    "Notice": 0,
    "warn": 0,
    "info": 0,
}
CAMEL_CASE = re.compile(r"(?:[A-Z][a-z]+)+")
# code outside the operator's conditions (the plugin's own lint problems, the worker's result)
NOT_CONDITIONS = ("plugin", "worker", "cli")


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _names_a_reason(target: ast.expr) -> bool:
    name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
    return "reason" in name or name == "why"


def _constants(expression: ast.AST) -> list[str]:
    """CamelCase string literals of ``expression``, outside f-strings (messages)"""
    if isinstance(expression, ast.JoinedStr):
        return []
    if isinstance(expression, ast.Constant):
        value = expression.value
        return [value] if isinstance(value, str) and CAMEL_CASE.fullmatch(value) else []
    return [found for child in ast.iter_child_nodes(expression) for found in _constants(child)]


def _reason_expressions(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Call):
        called = _called(node)
        if called == "append" and isinstance(node.func, ast.Attribute) and _names_a_reason(node.func.value):
            # reasons.append(("Reason", message))
            return [arg.elts[0] if isinstance(arg, ast.Tuple) else arg for arg in node.args]
        position = REASON_ARGUMENT.get(called or "")
        if position is None:
            return []
        found = [node.args[position]] if len(node.args) > position else []
        return found + [keyword.value for keyword in node.keywords if keyword.arg == "reason"]
    if isinstance(node, ast.Assign):
        found = []
        for target in node.targets:
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                found += [v for t, v in zip(target.elts, node.value.elts, strict=False) if _names_a_reason(t)]
            elif _names_a_reason(target):
                found.append(node.value)
        return found
    if isinstance(node, ast.AnnAssign) and node.value is not None and _names_a_reason(node.target):
        return [node.value]
    return []


def literal_reasons() -> dict[str, str]:
    """reason -> the first place in the sources that writes it"""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in NOT_CONDITIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for expression in _reason_expressions(node):
                for reason in _constants(expression):
                    found.setdefault(reason, f"{relative}:{getattr(node, 'lineno', 0)}")
    return found


def documented() -> set[str]:
    """The reasons the guide explains: those named in the first cell of a table row (the reason or
    Event column) from "Reasons, and what to do" on; a word elsewhere in the prose does not count."""
    guide = GUIDE.read_text()
    rows = guide[guide.index("## Reasons, and what to do") :].splitlines()
    first_cells = [row.split("|")[1] for row in rows if row.startswith("|") and not row.startswith("|---")]
    return {word for cell in first_cells for word in re.findall(r"\b[A-Z][A-Za-z]+\b", cell)}


def test_the_scan_finds_the_reasons_it_should() -> None:
    # guards the scanner itself: a refactor that hid every reason from it would make the next
    # test pass on nothing
    reasons = literal_reasons()
    assert {"WaitingForTarget", "AwaitingApproval", "Retrying", "CollectionCreated"} <= set(reasons)
    assert len(reasons) > 40


@pytest.mark.parametrize("reason", sorted(literal_reasons()))
def test_every_written_reason_is_in_the_guide(reason: str) -> None:
    assert reason in documented(), f"{reason} ({literal_reasons()[reason]}) is not in docs/operations.md"


WORKER_REASONS = {reason.value for reason in Reason if reason is not Reason.COMPLETED}


@pytest.mark.parametrize("reason", sorted(WORKER_REASONS | {error.__name__ for error in REPORTED_BY_NAME}))
def test_every_computed_reason_is_in_the_guide(reason: str) -> None:
    assert reason in documented(), f"{reason} is not in docs/operations.md"
