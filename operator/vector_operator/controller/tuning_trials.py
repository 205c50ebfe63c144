"""A study's trials and its conclusion, on a filled scratch collection: trial 0 measures the
current parameters, the sampler proposes the rest, every trial is recorded in the status (the
study's memory), and at the end the best is measured again side by side with the current ones.
Shared by the operator's tuning daemon and `make bench-tune`, so the bench measures what runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vector_operator.api.collection_tuning import (
    TunedParameters,
    TuningObjectiveKind,
    TuningSpec,
    TuningStatus,
)
from vector_operator.milvus.tuning_bench import Sample, TuningBench
from vector_operator.tuning.outcome import Outcome, candidate_of, conclude
from vector_operator.tuning.scoring import best_trial, pareto_front
from vector_operator.tuning.search_space import Candidate, SearchSpace
from vector_operator.tuning.study import Study, measured, record


def _parameters(found: TunedParameters) -> TunedParameters:
    return TunedParameters.model_validate(found.model_dump(include=set(TunedParameters.model_fields)))


@dataclass
class TrialRunner:
    tuning: TuningSpec
    current: Candidate
    space: SearchSpace
    sample: Sample
    bench: TuningBench
    scratch: str  # the filled scratch collection trials are built on
    seed: Candidate | None = None  # the seed's defaults, measured as the first trial the sampler runs

    def run(
        self, status: TuningStatus, on_trial: Callable[[TuningStatus], None], stopped: Callable[[], bool]
    ) -> bool:
        """Measures trials until ``tuning.trials`` are recorded in ``status``; False when stopped
        first (the trials so far are kept: a later run resumes from them)."""
        budget, k = self.tuning.objective.max_search_p95_ms, self.tuning.objective.k
        if not status.trials:
            status.trials.append(
                record(0, self.current, self.bench.measure(self.scratch, self.current, self.sample), budget)
            )
            status.trials_done = 1
            on_trial(status)
        optimizer = Study(self.tuning, self.space, status.trials)
        if self.seed is not None and self.seed.key() not in {candidate_of(t).key() for t in status.trials}:
            optimizer.propose(self.seed)
        while status.trials_done < self.tuning.trials:
            if stopped():
                return False
            trial, candidate = optimizer.ask()
            figures = self.bench.measure(self.scratch, candidate, self.sample)
            done = optimizer.tell(trial, candidate, figures, status.trials_done)
            status.trials.append(done)
            status.trials_done += 1
            outcome = (
                f"failed: {done.failure}"
                if done.failure
                else f"recall@{k} {done.recall_at_k}, p95 {done.search_latency_p95_ms} ms"
            )
            status.message = (
                f"trial {status.trials_done}/{self.tuning.trials}: {candidate.describe()} {outcome}"
            )
            on_trial(status)
        return True

    def conclude(self, status: TuningStatus) -> Outcome:
        """The best trial measured again beside the current parameters, and what follows."""
        if self.tuning.objective.kind is TuningObjectiveKind.PARETO_FRONT:
            status.pareto_front = pareto_front(status.trials)
        best = best_trial(status.trials, self.tuning.objective.max_search_p95_ms)
        current_figures = _parameters(status.trials[0])
        best_figures: TunedParameters | None = None
        if best is not None and candidate_of(best).key() != self.current.key():
            best_measured, current_measured = self.bench.side_by_side(
                candidate_of(best), self.current, self.sample
            )
            best_figures = measured(candidate_of(best), best_measured)
            current_figures = measured(self.current, current_measured)
        status.current = current_figures
        status.best = best_figures or (_parameters(best) if best is not None else None)
        seed_key = self.seed.key() if self.seed is not None else self.current.key()
        seeded = next((t for t in status.trials if candidate_of(t).key() == seed_key), None)
        status.seed_defaults = _parameters(seeded) if seeded is not None else None
        outcome = conclude(self.tuning, current_figures, best_figures, self.tuning.objective.k)
        status.decision, status.message = outcome.decision, outcome.message
        return outcome
