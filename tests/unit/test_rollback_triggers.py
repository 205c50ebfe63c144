"""When a RollbackPolicy fires: sustained per-batch crossings, durations, phases, selectors."""

from __future__ import annotations

import datetime
from typing import Any

from vector_operator.api.kubernetes_types import LabelSelector
from vector_operator.api.migrationplan import BatchMetrics
from vector_operator.api.rollbackpolicy import RollbackPolicySpec
from vector_operator.rollback.triggers import Observation, describe, evaluate, parse_duration, selects

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)


def spec(*triggers: dict[str, Any]) -> RollbackPolicySpec:
    return RollbackPolicySpec.model_validate(
        {"planNames": ["p"], "triggers": list(triggers), "actions": ["Abort"]}
    )


def batches(*coherences: float) -> list[BatchMetrics]:
    return [BatchMetrics(batch=i, coherence=c, failure_rate=0.0) for i, c in enumerate(coherences)]


def observe(
    phase: str, recent: list[BatchMetrics], now: datetime.datetime = NOW, **figures: float
) -> Observation:
    return Observation(phase=phase, recent_batches=recent, figures=figures, now=now)


def test_one_bad_batch_below_the_sustain_count_does_not_fire_two_consecutive_do() -> None:
    policy = spec({"metric": "coherence", "below": 0.85, "forBatches": 2})
    assert evaluate("g", policy, observe("Generating", batches(0.99, 0.70, 0.99)), {})[0] is None
    assert (
        evaluate("g", policy, observe("Generating", batches(0.70)), {})[0] is None
    )  # not enough batches yet
    firing, _ = evaluate("g", policy, observe("Generating", batches(0.99, 0.80, 0.75)), {})
    assert firing is not None
    assert firing.observed == 0.75  # the worst of the window
    assert firing.threshold == 0.85
    assert firing.trigger == "coherence below 0.85 for 2 batches"


def test_without_a_sustain_count_the_latest_batch_decides() -> None:
    policy = spec({"metric": "failureRate", "above": 0.05})
    recent = [BatchMetrics(batch=0, failure_rate=0.2), BatchMetrics(batch=1, failure_rate=0.01)]
    assert evaluate("g", policy, observe("Generating", recent), {})[0] is None
    recent.append(BatchMetrics(batch=2, failure_rate=0.06))
    assert evaluate("g", policy, observe("Generating", recent), {})[0] is not None


def test_triggers_apply_only_in_their_phases_and_read_collection_figures_after_generating() -> None:
    policy = spec({"metric": "searchLatencyP95Ms", "above": 50, "phases": ["PostCutover"]})
    assert evaluate("g", policy, observe("Validating", [], searchLatencyP95Ms=90), {})[0] is None
    firing, _ = evaluate("g", policy, observe("PostCutover", [], searchLatencyP95Ms=90), {})
    assert firing is not None
    assert firing.observed == 90
    coherence = spec({"metric": "coherence", "below": 0.85, "forBatches": 3})
    assert evaluate("g", coherence, observe("Validating", batches(0.99), coherence=0.8), {})[0] is not None


def test_a_duration_must_pass_while_the_threshold_stays_crossed() -> None:
    policy = spec({"metric": "searchLatencyP95Ms", "above": 50, "forDuration": "5m"})
    firing, since = evaluate("g", policy, observe("PostCutover", [], searchLatencyP95Ms=90), {})
    assert firing is None
    assert since == {"g/0": NOW}
    later = NOW + datetime.timedelta(minutes=4)
    assert evaluate("g", policy, observe("PostCutover", [], later, searchLatencyP95Ms=90), since)[0] is None
    recovered = evaluate("g", policy, observe("PostCutover", [], later, searchLatencyP95Ms=10), since)
    assert recovered == (None, {})  # back under: the clock starts again
    firing, _ = evaluate(
        "g",
        policy,
        observe("PostCutover", [], NOW + datetime.timedelta(minutes=5), searchLatencyP95Ms=90),
        since,
    )
    assert firing is not None


def test_durations_and_descriptions() -> None:
    assert parse_duration("1h30m") == datetime.timedelta(minutes=90)
    assert parse_duration("250ms") == datetime.timedelta(milliseconds=250)
    policy = spec({"metric": "processingTimeMs", "above": 250, "forDuration": "2m"})
    assert describe(policy.triggers[0]) == "processingTimeMs above 250 for 2m"


def test_selectors_and_names_choose_the_guarded_plans() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchLabels": {"team": "search"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["dev"]}],
        }
    )
    assert selects(selector, None, "a", {"team": "search"})
    assert not selects(selector, None, "a", {"team": "search", "tier": "dev"})
    assert not selects(selector, None, "a", {"team": "ads"})
    assert selects(None, ["a"], "a", {})
    assert not selects(None, ["b"], "a", {})
    assert selects(LabelSelector.model_validate({}), None, "a", {"any": "thing"})  # {} selects all
