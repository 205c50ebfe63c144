"""`kubectl vector lint` judges manifests offline as the API server does: the same table of invalid
manifests the API server is held to (tests/crd_cases.py), with the same messages, and every
example passes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.crd_cases import CASES, Case, invalid_and_valid
from tests.plan_manifests import minimal_plan

from vector_operator.plugin.lint import lint

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_an_invalid_manifest_is_refused_offline_with_the_api_servers_message(case: Case) -> None:
    invalid, valid = invalid_and_valid(case)
    problems = [str(problem) for problem in lint(invalid)]
    assert any(case.message in problem for problem in problems), problems
    assert lint(valid) == []


def test_every_example_is_valid_and_unknown_fields_are_named() -> None:
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                assert lint(document) == [], f"{path}: {document.get('kind')}"
    typo = minimal_plan("x", batching={"recordPerJob": 10})
    assert [str(problem) for problem in lint(typo)] == ['unknown field "spec.batching.recordPerJob"']
