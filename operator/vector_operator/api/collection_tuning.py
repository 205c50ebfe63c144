"""A VectorCollection's tuning: a Bayesian study (Optuna) of index build and search parameters on
a sample of the stored vectors, recall@k against exact search versus search latency, whose result
is reported, applied to the search parameters, or applied by a re-index."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from vector_operator.api.model import ApiModel, Rule, list_type, validations

SCHEDULE_RE = "^(@hourly|@daily|@weekly|@monthly|([0-9]+(m|h))+)$"


class TuningApply(StrEnum):
    """What a finished study does with its result."""

    RECOMMEND = "Recommend"
    SEARCH_PARAMS = "SearchParams"
    REINDEX = "Reindex"


class TuningObjectiveKind(StrEnum):
    """What the study optimises."""

    RECALL_UNDER_LATENCY = "RecallUnderLatency"
    PARETO_FRONT = "ParetoFront"


class TunedIndexType(StrEnum):
    """The index types a study can search among (the ones with parameters to tune)."""

    IVF_FLAT = "IVF_FLAT"
    IVF_SQ8 = "IVF_SQ8"
    IVF_PQ = "IVF_PQ"
    HNSW = "HNSW"


class IntRange(ApiModel):
    """An inclusive integer range, searched on a log scale."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(rule="self.min <= self.max", message="min must not exceed max", field_path=".min")
        )
    )

    min: int = Field(ge=1, le=65536)
    """Smallest value tried."""
    max: int = Field(ge=1, le=65536)
    """Largest value tried."""


class TuningSpace(ApiModel):
    """The ranges searched. Omitted ranges take sensible defaults per index type: nlist 16..4096,
    nprobe 1..256 (never above nlist), M 4..64, efConstruction 32..512, ef 10..512 (never below k)."""

    nlist: IntRange | None = None
    """IVF types: clusters."""
    nprobe: IntRange | None = None
    """IVF types: clusters searched per query."""
    hnsw_m: IntRange | None = Field(default=None, alias="M")
    """HNSW: graph neighbours per node."""
    ef_construction: IntRange | None = None
    """HNSW: candidate list size while building."""
    ef: IntRange | None = None
    """HNSW: candidate list size while searching."""


class TuningObjective(ApiModel):
    """What a better trial is."""

    kind: TuningObjectiveKind = TuningObjectiveKind.RECALL_UNDER_LATENCY
    """RecallUnderLatency: the highest recall@k whose search p95 stays within maxSearchP95Ms.
    ParetoFront: both at once (a multi-objective study); the front is recorded and the
    recommendation is its highest recall within maxSearchP95Ms."""
    k: int = Field(default=10, ge=1, le=100)
    """The k of recall@k."""
    max_search_p95_ms: float = Field(default=50.0, ge=0.01, le=60000)
    """The latency budget: search p95 in milliseconds, one query at a time."""


class TuningSpec(ApiModel):
    """A Bayesian study of index and search parameters (Optuna's TPE) on a sample of the stored
    vectors: each trial builds a candidate index on a scratch collection and measures recall@k
    against exact search and search latency on held-out stored vectors."""

    trials: int = Field(default=20, ge=2, le=200)
    """Trials per study, the seed's 20 by default. The parameters the collection serves with are
    measured first, as trial 0, so the result is compared with them in the same run."""
    sample_size: int = Field(default=20000, ge=100, le=1_000_000)
    """Stored vectors the scratch collections hold."""
    queries: int = Field(default=200, ge=10, le=10000)
    """Held-out stored vectors (not in the sample) used as queries."""
    index_types: list[TunedIndexType] | None = Field(
        default=None, max_length=4, json_schema_extra=list_type("set")
    )
    """The index types searched among; omitted: the collection's own type (HNSW when it has no
    parameters to tune). Types the Milvus server cannot build are left out, and said so."""
    space: TuningSpace | None = None
    """Ranges searched; omitted: the defaults per type."""
    objective: TuningObjective = Field(default_factory=TuningObjective)
    """What a better trial is."""
    apply: TuningApply = TuningApply.RECOMMEND
    """Recommend: report only. SearchParams: only search parameters are tuned (on the current
    index) and the operator serves with the result (status.tuning.applied). Reindex: build
    parameters too, applied through a re-index without downtime."""
    schedule: str | None = Field(
        default=None,
        max_length=32,
        json_schema_extra=validations(
            Rule(
                rule=f"self.matches('{SCHEDULE_RE}')",
                message="tuning.schedule must be @hourly, @daily, @weekly, @monthly or a period such as "
                "12h or 90m",
            )
        ),
    )
    """Run the study again this long after the last one finished: @hourly, @daily, @weekly,
    @monthly or a period such as 12h. Omitted: once per change of the tuning or index spec."""
    latency_tolerance: float = Field(default=0.1, ge=0, le=10)
    """When the result is compared with the current parameters side by side, a p95 up to this
    fraction (plus 0.5 ms) above theirs still counts as no worse: latency on a busy machine is
    noisy."""


class TunedParameters(ApiModel):
    """One set of parameters and what it measured."""

    index_type: str = Field(max_length=32)
    """The index type."""
    params: dict[str, int] = Field(default_factory=dict)
    """Build parameters (Milvus names: nlist, M, efConstruction ...)."""
    search_params: dict[str, int] = Field(default_factory=dict)
    """Search parameters (nprobe, ef)."""
    recall_at_k: float | None = Field(default=None, ge=0, le=1)
    """recall@k against exact search on the held-out queries."""
    search_latency_p50_ms: float | None = Field(default=None, ge=0)
    """Median search latency, one query at a time."""
    search_latency_p95_ms: float | None = Field(default=None, ge=0)
    """95th percentile search latency."""


class TuningTrial(TunedParameters):
    """One trial of the study."""

    number: int = Field(ge=0)
    """The trial's number in the study (0: the current parameters)."""
    feasible: bool = True
    """Whether its p95 is within the latency budget."""
    failure: str | None = Field(default=None, max_length=512)
    """Why the trial could not be measured (Milvus refused the parameters ...)."""


class TuningState(StrEnum):
    """Where the study stands."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TuningDecision(StrEnum):
    """What the study's result led to."""

    RECOMMENDED = "Recommended"
    APPLIED_SEARCH_PARAMS = "AppliedSearchParams"
    REINDEXING = "Reindexing"
    KEPT_CURRENT = "KeptCurrent"


class TuningStatus(ApiModel):
    """The latest study: its trials (bounded), the best parameters, the current ones measured the
    same way beside them, and the decision taken."""

    state: TuningState
    """Running, Succeeded or Failed."""
    fingerprint: str = Field(max_length=64)
    """Which tuning and index spec the study ran for: a change starts a new study."""
    index_types: list[str] = Field(default_factory=list, max_length=8, json_schema_extra=list_type("atomic"))
    """The index types searched among."""
    skipped_index_types: list[str] = Field(
        default_factory=list, max_length=8, json_schema_extra=list_type("atomic")
    )
    """Asked-for index types the Milvus server cannot build, left out."""
    ignored_parameters: list[str] = Field(
        default_factory=list, max_length=16, json_schema_extra=list_type("atomic")
    )
    """Build parameters the Milvus server accepts but ignores (e.g. IVF_SQ8.nlist on Milvus Lite
    3.2, which makes its own lists), so not searched."""
    sample_size: int | None = Field(default=None, ge=0)
    """Vectors in the scratch collections."""
    queries: int | None = Field(default=None, ge=0)
    """Held-out queries."""
    trials_done: int = Field(default=0, ge=0)
    """Trials measured so far."""
    trials: list[TuningTrial] = Field(
        default_factory=list, max_length=200, json_schema_extra=list_type("atomic")
    )
    """The trials, in order (at most 200)."""
    pareto_front: list[int] | None = Field(
        default=None, max_length=200, json_schema_extra=list_type("atomic")
    )
    """ParetoFront: the numbers of the trials on the front."""
    current: TunedParameters | None = None
    """The parameters the collection served with when the study started, re-measured side by side
    with the best at the end."""
    best: TunedParameters | None = None
    """The best trial, re-measured side by side with the current parameters at the end."""
    seed_defaults: TunedParameters | None = None
    """The seed's defaults for the index type (IVF: nlist 1024, nprobe 16; HNSW: M 16,
    efConstruction 200, ef 64), measured as a trial of the study like the others."""
    decision: TuningDecision | None = None
    """Recommended, AppliedSearchParams, Reindexing or KeptCurrent."""
    applied: TunedParameters | None = None
    """What the operator serves with because of tuning (apply: SearchParams or Reindex): the
    search parameters its probes and applications should use, and the index it re-indexed to."""
    applied_for: str | None = Field(default=None, max_length=64)
    """The fingerprint of spec.index and spec.searchParams the applied parameters replace: when
    the spec changes, the spec wins again."""
    started_at: datetime | None = None
    """When the study started."""
    finished_at: datetime | None = None
    """When it finished."""
    next_run_at: datetime | None = None
    """With a schedule: when the next study starts."""
    message: str | None = Field(default=None, max_length=4096)
    """What happened, for humans."""
