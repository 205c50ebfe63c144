"""What a study searches: the index types, the ranges of their parameters, and how one set of
parameters (a :class:`Candidate`) is drawn from an Optuna trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from vector_operator.api.collection_tuning import IntRange, TuningApply, TuningSpace, TuningSpec

IVF_TYPES = ("IVF_FLAT", "IVF_SQ8", "IVF_PQ")
TUNABLE_TYPES = (*IVF_TYPES, "HNSW")
DEFAULT_RANGES: Mapping[str, tuple[int, int]] = {
    "nlist": (16, 4096),
    "nprobe": (1, 256),
    "M": (4, 64),
    "efConstruction": (32, 512),
    "ef": (10, 512),
}
SEED_DEFAULTS: Mapping[str, tuple[Mapping[str, int], Mapping[str, int]]] = {
    # The seed's section 1.2: IVF_SQ8 nlist 1024 / nprobe 16; HNSW M 16 / efConstruction 200.
    "IVF_FLAT": ({"nlist": 1024}, {"nprobe": 16}),
    "IVF_SQ8": ({"nlist": 1024}, {"nprobe": 16}),
    "HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 64}),
}
MIN_ROWS_PER_LIST = 8
"""nlist is kept at most sample / 8: emptier lists make k-means and recall meaningless."""


@dataclass(frozen=True)
class Candidate:
    """One set of index and search parameters."""

    index_type: str
    params: Mapping[str, int] = field(default_factory=dict)
    search_params: Mapping[str, int] = field(default_factory=dict)

    def key(self) -> tuple[str, tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
        return self.index_type, tuple(sorted(self.params.items())), tuple(sorted(self.search_params.items()))

    def describe(self) -> str:
        values = {**self.params, **self.search_params}
        return f"{self.index_type} ({', '.join(f'{k}={v}' for k, v in sorted(values.items()))})"


def seed_defaults(index_type: str, space: SearchSpace) -> Candidate | None:
    """The seed's defaults for ``index_type`` as the space would draw them (an ignored parameter
    keeps the current value; SearchParams keeps the current index), or None (no defaults known)."""
    if index_type not in SEED_DEFAULTS:
        return None
    params, search = SEED_DEFAULTS[index_type]
    return space.candidate(index_type, {**params, **search})


def tuned_types(spec: TuningSpec, current_type: str) -> list[str]:
    """The index types asked for; by default the collection's own (HNSW when it has nothing to
    tune). apply: SearchParams keeps the current index, so only its type."""
    if spec.apply is TuningApply.SEARCH_PARAMS:
        return [current_type]
    if spec.index_types:
        return [t.value for t in spec.index_types]
    return [current_type] if current_type in TUNABLE_TYPES else ["HNSW"]


def _range(space: TuningSpace | None, name: str) -> tuple[int, int]:
    given: IntRange | None = None
    if space is not None:
        given = {
            "nlist": space.nlist,
            "nprobe": space.nprobe,
            "M": space.hnsw_m,
            "efConstruction": space.ef_construction,
            "ef": space.ef,
        }[name]
    return (given.min, given.max) if given is not None else DEFAULT_RANGES[name]


def pq_m_choices(dimension: int) -> list[int]:
    """IVF_PQ's m: the divisors of the dimension up to 64 (sub-vectors of equal length)."""
    return [m for m in range(1, min(64, dimension) + 1) if dimension % m == 0]


@dataclass(frozen=True)
class SearchSpace:
    types: Sequence[str]
    space: TuningSpace | None
    k: int
    dimension: int
    sample_size: int
    fixed: Candidate | None = None  # apply: SearchParams: the index stays this one
    ignored: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Build parameters the server ignores, per type: not searched (their value changes nothing)."""
    current: Candidate | None = None  # where an ignored parameter's value comes from

    def distributions(self, index_type: str) -> dict[str, BaseDistribution]:
        """Optuna's distributions of the parameters a trial of ``index_type`` draws."""
        found: dict[str, BaseDistribution] = {}
        if len(self.types) > 1:
            found["index_type"] = CategoricalDistribution(list(self.types))
        build = self.fixed is None
        if index_type in IVF_TYPES:
            if build and "nlist" not in self.ignored.get(index_type, ()):
                low, high = _range(self.space, "nlist")
                high = max(low, min(high, self.sample_size // MIN_ROWS_PER_LIST))
                found["nlist"] = IntDistribution(low, high, log=True)
            low, high = _range(self.space, "nprobe")
            found["nprobe"] = IntDistribution(low, high, log=True)
            if build and index_type == "IVF_PQ":
                found["m"] = CategoricalDistribution(pq_m_choices(self.dimension))
        elif index_type == "HNSW":
            if build:
                for name in ("M", "efConstruction"):
                    low, high = _range(self.space, name)
                    found[name] = IntDistribution(low, high, log=True)
            low, high = _range(self.space, "ef")
            found["ef"] = IntDistribution(max(low, self.k), max(high, self.k), log=True)
        return found

    def draw(self, trial: optuna.Trial) -> Candidate:
        """The candidate Optuna's sampler proposes for ``trial``."""
        index_type = (
            self.types[0]
            if len(self.types) == 1
            else str(trial.suggest_categorical("index_type", self.types))
        )
        drawn: dict[str, int] = {}
        for name, distribution in self.distributions(index_type).items():
            if name == "index_type":
                continue
            if isinstance(distribution, CategoricalDistribution):
                drawn[name] = int(str(trial.suggest_categorical(name, distribution.choices)))
            elif isinstance(distribution, IntDistribution):
                drawn[name] = trial.suggest_int(
                    name, distribution.low, distribution.high, log=distribution.log
                )
        return self.candidate(index_type, drawn)

    def candidate(self, index_type: str, drawn: Mapping[str, int]) -> Candidate:
        search = {name: drawn[name] for name in ("nprobe", "ef") if name in drawn}
        if self.fixed is not None:
            params = dict(self.fixed.params)
        else:
            params = {name: drawn[name] for name in ("nlist", "m", "M", "efConstruction") if name in drawn}
            if index_type == "IVF_PQ":
                params["nbits"] = 8
            for name in self.ignored.get(index_type, ()):
                params[name] = self._unsearched(index_type, name)
        nlist = params.get("nlist")
        if nlist is not None and "nprobe" in search and "nlist" not in self.ignored.get(index_type, ()):
            search["nprobe"] = min(search["nprobe"], nlist)  # a search visits at most every list
        return Candidate(index_type, params, search)

    def _unsearched(self, index_type: str, name: str) -> int:
        """An ignored parameter keeps the current value (or the seed's default): Milvus wants one."""
        if self.current is not None and name in self.current.params:
            return self.current.params[name]
        return SEED_DEFAULTS.get(index_type, ({name: 1024}, {}))[0].get(name, 1024)

    def optuna_params(self, candidate: Candidate) -> dict[str, object]:
        """A measured candidate in Optuna's terms, to give a resumed study its earlier trials."""
        values: dict[str, object] = {**candidate.params, **candidate.search_params}
        values.pop("nbits", None)
        if len(self.types) > 1:
            values["index_type"] = candidate.index_type
        wanted = self.distributions(candidate.index_type)
        return {name: values[name] for name in wanted if name in values}
