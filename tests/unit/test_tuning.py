"""The tuning study's pure parts: what it searches, how it scores, when it runs, what it concludes,
and that a study resumed from the status's trial table continues instead of starting over."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from vector_operator.api.collection_reindex import ReindexStatus
from vector_operator.api.collection_tuning import (
    TunedParameters,
    TuningDecision,
    TuningSpec,
    TuningState,
    TuningStatus,
    TuningTrial,
)
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.collection.tuning_condition import tuned_condition
from vector_operator.tuning import schedule
from vector_operator.tuning.outcome import conclude
from vector_operator.tuning.scoring import Measurement, best_trial, exact_neighbours, pareto_front, recall
from vector_operator.tuning.search_space import (
    Candidate,
    SearchSpace,
    pq_m_choices,
    seed_defaults,
    tuned_types,
)
from vector_operator.tuning.study import Study, record

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def tuning(**raw: object) -> TuningSpec:
    return TuningSpec.model_validate(raw)


def trial(number: int, recall_at_k: float | None, p95: float | None, **changes: object) -> TuningTrial:
    values: dict[str, object] = {
        "number": number,
        "indexType": "IVF_SQ8",
        "params": {"nlist": 128},
        "searchParams": {"nprobe": 8},
        "recallAtK": recall_at_k,
        "searchLatencyP95Ms": p95,
    }
    values.update(changes)
    return TuningTrial.model_validate(values)


# -- what is searched ----------------------------------------------------------------------------


def test_the_default_types_are_the_collections_own_or_hnsw_and_search_params_keep_the_index() -> None:
    assert tuned_types(tuning(), "IVF_SQ8") == ["IVF_SQ8"]
    assert tuned_types(tuning(), "AUTOINDEX") == ["HNSW"]
    assert tuned_types(tuning(indexTypes=["HNSW", "IVF_FLAT"]), "IVF_SQ8") == ["HNSW", "IVF_FLAT"]
    assert tuned_types(tuning(apply="SearchParams", indexTypes=["HNSW"]), "IVF_SQ8") == ["IVF_SQ8"]


def draws(space: SearchSpace, count: int = 40) -> list[Candidate]:
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    found = []
    for _ in range(count):
        asked = study.ask()
        found.append(space.draw(asked))
        study.tell(asked, 0.0)
    return found


def test_drawn_candidates_stay_in_their_ranges_and_make_sense_together() -> None:
    space = SearchSpace(["IVF_SQ8", "HNSW", "IVF_PQ"], None, k=10, dimension=384, sample_size=20000)
    for candidate in draws(space):
        if candidate.index_type == "HNSW":
            assert 4 <= candidate.params["M"] <= 64
            assert 32 <= candidate.params["efConstruction"] <= 512
            assert 10 <= candidate.search_params["ef"] <= 512  # ef never below k
        else:
            assert 16 <= candidate.params["nlist"] <= 20000 // 8
            assert 1 <= candidate.search_params["nprobe"] <= candidate.params["nlist"]
        if candidate.index_type == "IVF_PQ":
            assert 384 % candidate.params["m"] == 0
            assert candidate.params["nbits"] == 8
    assert pq_m_choices(12) == [1, 2, 3, 4, 6, 12]


def test_search_params_only_keeps_the_build_parameters_fixed() -> None:
    current = Candidate("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 64})
    space = SearchSpace(["HNSW"], None, k=20, dimension=384, sample_size=20000, fixed=current)
    for candidate in draws(space, 10):
        assert candidate.params == current.params
        assert candidate.search_params["ef"] >= 20


# -- scoring ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["L2", "COSINE", "IP"])
def test_exact_neighbours_agree_with_a_brute_force_ranking(metric: str) -> None:
    generator = np.random.default_rng(3)
    sample = generator.standard_normal((300, 8)).astype(np.float32)
    queries = generator.standard_normal((5, 8)).astype(np.float32)
    found = exact_neighbours(sample, queries, metric, 4)
    for query, got in zip(queries, found, strict=True):
        if metric == "L2":
            order = np.argsort(((sample - query) ** 2).sum(axis=1))
        elif metric == "COSINE":
            order = np.argsort(-(sample @ query) / np.linalg.norm(sample, axis=1))
        else:
            order = np.argsort(-(sample @ query))
        assert set(got.tolist()) == set(order[:4].tolist())
    assert recall([list(row) for row in found], found) == 1.0
    assert recall([[row[0]] for row in found.tolist()], found) == 0.25


def test_the_best_trial_is_the_highest_recall_within_the_budget_then_the_cheaper_and_faster() -> None:
    trials = [
        trial(0, 0.80, 2.0),
        trial(1, 0.99, 80.0),  # over a 50 ms budget
        trial(2, 0.95, 4.0),
        trial(3, 0.9502, 3.0),  # a tie on recall, faster
        trial(4, None, None, failure="refused"),
        trial(5, 0.9504, 2.5, searchParams={"nprobe": 64}),  # a tie too, but each query visits 8x more
    ]
    best = best_trial(trials, 50.0)
    assert best is not None
    assert best.number == 3
    assert best_trial(trials[1:2], 50.0) is None
    assert pareto_front(trials) == [0, 1, 5]


# -- the conclusion ----------------------------------------------------------------------------------


def measured(recall_at_k: float, p95: float, **changes: object) -> TunedParameters:
    values: dict[str, object] = {
        "indexType": "IVF_SQ8",
        "params": {"nlist": 1024},
        "searchParams": {"nprobe": 16},
        "recallAtK": recall_at_k,
        "searchLatencyP95Ms": p95,
    }
    values.update(changes)
    return TunedParameters.model_validate(values)


CURRENT = measured(0.80, 3.0)
BETTER = measured(0.97, 3.1, params={"nlist": 128}, searchParams={"nprobe": 24})


def test_a_result_that_beats_the_current_parameters_side_by_side_is_recommended_or_applied() -> None:
    recommended = conclude(tuning(), CURRENT, BETTER, 10)
    assert recommended.decision is TuningDecision.RECOMMENDED
    assert recommended.applied is None
    assert "nlist=128" in recommended.message
    assert "recall@10 0.97 (current 0.8)" in recommended.message

    reindex = conclude(tuning(apply="Reindex"), CURRENT, BETTER, 10)
    assert reindex.decision is TuningDecision.REINDEXING
    assert reindex.applied == BETTER

    search_only = conclude(tuning(apply="SearchParams"), CURRENT, BETTER, 10)
    assert search_only.decision is TuningDecision.APPLIED_SEARCH_PARAMS
    assert search_only.applied is not None
    assert search_only.applied.params == CURRENT.params  # the index stays
    assert search_only.applied.search_params == {"nprobe": 24}


@pytest.mark.parametrize(
    ("best", "why"),
    [
        (None, "no trial did better"),
        (measured(0.70, 2.0, params={"nlist": 64}), "below the current"),
        (measured(0.97, 9.0, params={"nlist": 64}), "worse than the current"),
        (measured(0.97, 60.0, params={"nlist": 64}), "over the 50.0 ms budget"),
    ],
)
def test_the_current_parameters_are_kept_unless_beaten_on_recall_at_a_latency_no_worse(
    best: TunedParameters | None, why: str
) -> None:
    outcome = conclude(tuning(apply="Reindex"), CURRENT, best, 10)
    assert outcome.decision is TuningDecision.KEPT_CURRENT
    assert outcome.applied is None
    assert why in outcome.message


# -- when it runs -------------------------------------------------------------------------------------


def test_a_study_runs_per_change_resumes_after_a_restart_and_repeats_on_its_schedule() -> None:
    spec = VectorCollectionSpec.model_validate(
        {"collectionName": "nodes", "dimension": 384, "embedding": {"model": "m"}, "tuning": {}}
    )
    assert spec.tuning is not None
    fingerprint = schedule.study_fingerprint(spec.tuning, layout_of(spec))
    assert schedule.due(spec.tuning, None, fingerprint, NOW) is schedule.Due.START
    running = TuningStatus(state=TuningState.RUNNING, fingerprint=fingerprint)
    assert schedule.due(spec.tuning, running, fingerprint, NOW) is schedule.Due.RESUME
    done = TuningStatus(state=TuningState.SUCCEEDED, fingerprint=fingerprint, finished_at=NOW)
    assert schedule.due(spec.tuning, done, fingerprint, NOW + datetime.timedelta(days=30)) is None
    assert schedule.due(spec.tuning, done, "another spec", NOW) is schedule.Due.START

    weekly = spec.tuning.model_copy(update={"schedule": "@weekly"})
    assert schedule.due(weekly, done, fingerprint, NOW + datetime.timedelta(days=6)) is None
    assert schedule.due(weekly, done, fingerprint, NOW + datetime.timedelta(days=7)) is schedule.Due.START
    assert schedule.period("12h") == datetime.timedelta(hours=12)
    assert schedule.period("1h30m") == datetime.timedelta(minutes=90)


# -- the study -------------------------------------------------------------------------------------------


def synthetic(candidate: Candidate) -> Measurement:
    """A stand-in for a Milvus measurement: recall grows with nprobe/nlist, latency with nprobe."""
    share = candidate.search_params["nprobe"] / candidate.params["nlist"]
    return Measurement(min(1.0, 0.5 + share), 1.0, 1.0 + candidate.search_params["nprobe"] / 10)


def test_a_resumed_study_keeps_its_trials_and_goes_on_from_there() -> None:
    spec = tuning(trials=12, objective={"maxSearchP95Ms": 20})
    space = SearchSpace(["IVF_SQ8"], None, k=10, dimension=16, sample_size=4000)
    current = Candidate("IVF_SQ8", {"nlist": 1024}, {"nprobe": 16})
    trials = [record(0, current, synthetic(current), 20)]
    first = Study(spec, space, trials)
    for number in range(1, 6):
        asked, candidate = first.ask()
        trials.append(first.tell(asked, candidate, synthetic(candidate), number))

    resumed = Study(spec, space, trials)  # a restarted operator, from the status's table
    assert len(resumed.study.trials) == 5
    assert [t.params for t in resumed.study.trials] == [t.params for t in first.study.trials]
    for number in range(6, 12):
        asked, candidate = resumed.ask()
        trials.append(resumed.tell(asked, candidate, synthetic(candidate), number))
    assert [t.number for t in trials] == list(range(12))
    best = best_trial(trials, 20)
    assert best is not None
    assert best.recall_at_k is not None
    assert trials[0].recall_at_k is not None
    assert best.recall_at_k > trials[0].recall_at_k
    assert all(t.feasible == ((t.search_latency_p95_ms or 0) <= 20) for t in trials)


def test_a_build_parameter_the_server_ignores_is_not_searched() -> None:
    """Milvus Lite 3.2 makes its own IVF lists whatever nlist says: only nprobe is worth a trial."""
    current = Candidate("IVF_SQ8", {"nlist": 1024}, {"nprobe": 16})
    space = SearchSpace(
        ["IVF_SQ8"],
        None,
        k=10,
        dimension=384,
        sample_size=20000,
        ignored={"IVF_SQ8": ("nlist",)},
        current=current,
    )
    assert "nlist" not in space.distributions("IVF_SQ8")
    for candidate in draws(space, 20):
        assert candidate.params == {"nlist": 1024}  # kept: Milvus wants a value
        assert 1 <= candidate.search_params["nprobe"] <= 256  # not cut to an nlist that means nothing


def test_recall_ties_across_index_types_are_broken_by_latency_not_by_unrelated_parameters() -> None:
    hnsw = trial(
        1, 0.99, 9.0, indexType="HNSW", params={"M": 16, "efConstruction": 64}, searchParams={"ef": 20}
    )
    ivf = trial(2, 0.9902, 4.0, searchParams={"nprobe": 64})
    best = best_trial([hnsw, ivf], 50.0)
    assert best is not None
    assert best.number == 2


def test_the_seed_defaults_are_drawn_as_the_space_would_draw_them() -> None:
    current = Candidate("IVF_SQ8", {"nlist": 256}, {"nprobe": 8})
    plain = SearchSpace(["IVF_SQ8"], None, k=10, dimension=384, sample_size=20000, current=current)
    assert seed_defaults("IVF_SQ8", plain) == Candidate("IVF_SQ8", {"nlist": 1024}, {"nprobe": 16})
    ignoring = SearchSpace(
        ["IVF_SQ8"],
        None,
        k=10,
        dimension=384,
        sample_size=20000,
        ignored={"IVF_SQ8": ("nlist",)},
        current=current,
    )
    assert seed_defaults("IVF_SQ8", ignoring) == Candidate("IVF_SQ8", {"nlist": 256}, {"nprobe": 16})
    assert seed_defaults("FLAT", plain) is None


def test_a_resumed_study_skips_recorded_trials_outside_todays_ranges() -> None:
    spec = tuning(trials=6)
    wide = SearchSpace(["IVF_SQ8"], None, k=10, dimension=16, sample_size=40000)
    narrow = SearchSpace(["IVF_SQ8"], None, k=10, dimension=16, sample_size=400)  # nlist at most 50 now
    current = Candidate("IVF_SQ8", {"nlist": 1024}, {"nprobe": 16})
    recorded = [record(0, current, synthetic(current), 20), record(1, current, synthetic(current), 20)]
    outside = Study(spec, narrow, recorded)
    assert len(outside.study.trials) == 0  # nlist 1024 does not fit: left out of the sampler's memory
    assert len(Study(spec, wide, recorded).study.trials) == 1


def test_the_tuned_condition_follows_the_reindex_that_applies_the_study() -> None:
    finished = NOW
    study = TuningStatus(
        state=TuningState.SUCCEEDED, fingerprint="f", decision=TuningDecision.REINDEXING, finished_at=finished
    )

    def reindex(state: str, started: datetime.datetime) -> ReindexStatus:
        return ReindexStatus.model_validate(
            {"state": state, "source": "a", "target": "b", "index": "HNSW", "indexFingerprint": "x",
             "startedAt": started.isoformat()}
        )  # fmt: skip

    later = finished + datetime.timedelta(seconds=5)
    assert tuned_condition(study, 20).reason == "Reindexing"
    assert tuned_condition(study, 20, reindex("Copying", later)).reason == "Reindexing"
    assert tuned_condition(study, 20, reindex("Succeeded", later)).reason == "Reindexed"
    assert tuned_condition(study, 20, reindex("Failed", later)).reason == "ReindexFailed"
    # A re-index from before the study is not its doing.
    earlier = finished - datetime.timedelta(hours=1)
    assert tuned_condition(study, 20, reindex("Succeeded", earlier)).reason == "Reindexing"
    assert tuned_condition(None, 20).reason == "TuningPending"
