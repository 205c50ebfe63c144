"""Replicas of one Deployment share their arguments: with --peering each draws its own priority,
because Kopf pauses every replica whose priority ties with a live peer's."""

from __future__ import annotations

import pytest

from vector_operator.cli import main
from vector_operator.operator_runtime import RunOptions, peering_priority


def test_a_standalone_operator_has_no_priority() -> None:
    assert peering_priority(RunOptions(namespaces=("a",))) is None


def test_a_given_priority_is_kept() -> None:
    assert peering_priority(RunOptions(namespaces=("a",), peering="vector-operator", priority=7)) == 7


def test_replicas_with_the_same_arguments_draw_different_priorities() -> None:
    options = RunOptions(namespaces=("a",), peering="vector-operator")
    drawn = {peering_priority(options) for _ in range(20)}
    assert len(drawn) == 20
    assert all(priority is not None and priority > 0 for priority in drawn)


def test_a_priority_without_peering_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--namespace", "a", "--priority", "5"])
    assert exit_.value.code == 2
    assert "--priority needs --peering" in capsys.readouterr().err
