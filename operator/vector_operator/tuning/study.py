"""The Bayesian study: Optuna's TPE sampler (multi-objective for the Pareto front) proposes
candidates, the caller measures them, the study learns. Its memory is the trial table kept in the
VectorCollection's status: a study resumed after a restart is given its earlier trials back, so
it neither repeats nor forgets them."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from vector_operator.api.collection_tuning import (
    TunedParameters,
    TuningObjectiveKind,
    TuningSpec,
    TuningTrial,
)
from vector_operator.tuning.scoring import Measurement
from vector_operator.tuning.search_space import Candidate, SearchSpace

SEED = 20
optuna.logging.set_verbosity(optuna.logging.WARNING)


class Study:
    """Ask for a candidate, tell what it measured; trial 0 (the current parameters) is measured
    by the caller before the study starts and is not the sampler's."""

    def __init__(self, spec: TuningSpec, space: SearchSpace, recorded: Sequence[TuningTrial]) -> None:
        self.spec, self.space = spec, space
        self.pareto = spec.objective.kind is TuningObjectiveKind.PARETO_FRONT
        sampler = optuna.samplers.TPESampler(
            seed=SEED + len(recorded),
            n_startup_trials=max(2, min(8, spec.trials // 2)),
        )
        self.study = optuna.create_study(
            directions=["maximize", "minimize"] if self.pareto else ["maximize"], sampler=sampler
        )
        for trial in recorded:
            if trial.number > 0:
                try:
                    self.study.add_trial(self._frozen(trial))
                except ValueError:  # outside today's ranges (another sample size, another server)
                    continue  # still in the status's table and in the choice of the best

    def _values(self, measured: Measurement) -> list[float]:
        recall = measured.recall_at_k or 0.0
        return [recall, measured.p95_ms or 0.0] if self.pareto else [recall]

    def _constraints(self, measured: Measurement) -> dict[str, float]:
        """Within the latency budget when <= 0 (the sampler favours feasible regions); the Pareto
        front needs none: latency is an objective there."""
        if self.pareto:
            return {}
        over = 1.0 if measured.p95_ms is None else measured.p95_ms - self.spec.objective.max_search_p95_ms
        return {"over_budget_ms": over}

    def _frozen(self, trial: TuningTrial) -> FrozenTrial:
        candidate = Candidate(trial.index_type, trial.params, trial.search_params)
        measured = Measurement(trial.recall_at_k, trial.search_latency_p50_ms, trial.search_latency_p95_ms)
        failed = trial.failure is not None or trial.recall_at_k is None
        return optuna.trial.create_trial(
            params=self.space.optuna_params(candidate),
            distributions={
                name: distribution
                for name, distribution in self.space.distributions(trial.index_type).items()
                if name in self.space.optuna_params(candidate)
            },
            values=None if failed else self._values(measured),
            state=TrialState.FAIL if failed else TrialState.COMPLETE,
            constraints=self._constraints(measured),
        )

    def propose(self, candidate: Candidate) -> None:
        """Has the next trial measure ``candidate`` (the seed's defaults, say) instead of a draw."""
        self.study.enqueue_trial(self.space.optuna_params(candidate), skip_if_exists=True)

    def ask(self) -> tuple[optuna.Trial, Candidate]:
        trial = self.study.ask()
        return trial, self.space.draw(trial)

    def tell(
        self, trial: optuna.Trial, candidate: Candidate, measured: Measurement, number: int
    ) -> TuningTrial:
        for key, value in self._constraints(measured).items():
            trial.set_constraint(key, value)
        if measured.failure is not None or measured.recall_at_k is None:
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, self._values(measured))
        return record(number, candidate, measured, self.spec.objective.max_search_p95_ms)


def measured(candidate: Candidate, figures: Measurement) -> TunedParameters:
    """A candidate and its figures in the status's terms (rounded: status is for humans)."""
    return TunedParameters(
        index_type=candidate.index_type,
        params=dict(candidate.params),
        search_params=dict(candidate.search_params),
        recall_at_k=None if figures.recall_at_k is None else round(figures.recall_at_k, 4),
        search_latency_p50_ms=None if figures.p50_ms is None else round(figures.p50_ms, 3),
        search_latency_p95_ms=None if figures.p95_ms is None else round(figures.p95_ms, 3),
    )


def record(number: int, candidate: Candidate, figures: Measurement, budget_ms: float) -> TuningTrial:
    """A measured candidate as a row of the status's trial table."""
    return TuningTrial(
        **dict(measured(candidate, figures)),
        number=number,
        feasible=figures.p95_ms is not None and figures.p95_ms <= budget_ms,
        failure=None if figures.failure is None else figures.failure[:500],
    )
