"""recordsPerJob and maxConcurrentJobs auto: Jobs sized from the source and the measured pace, as many
at once as the nodes hold by the pods' CPU requests."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from vector_operator.api.migrationplan import Batching, MigrationPhase, MigrationPlanStatus, Throughput
from vector_operator.api.model import parse_quantity
from vector_operator.kube.nodes import offered_cpus
from vector_operator.migration import job_sizing
from vector_operator.migration.batch_plan import MAX_BATCHES
from vector_operator.migration.observation import SiblingPlan

ESTIMATE = job_sizing.JobPace(50.0, 10.0, measured=False)
NOW = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)


def auto(**fields: object) -> Batching:
    return Batching.model_validate(fields)


@pytest.mark.parametrize(
    ("records", "at_once", "expected"),
    [
        (10_000, 2, 5_000),  # one wave: each Job 100 s of work, start-up 9 %
        (2_000, 2, 1_000),  # two Jobs still beat one, start-up or not
        (200, 2, 200),  # 100 records is less work than a Job's start-up: one Job
        (1_000_000, 2, 14_706),  # 68 Jobs in 34 whole waves of about 5 minutes each
        (1, 4, 1),
    ],
)
def test_auto_records_per_job(records: int, at_once: int, expected: int) -> None:
    assert job_sizing.records_per_job(auto(), records, at_once, ESTIMATE) == expected


def test_a_slow_start_makes_longer_jobs_and_the_spec_wins_over_auto() -> None:
    slow_start = job_sizing.JobPace(50.0, 60.0, measured=True)
    # start-up under a tenth of a Job: up to 600 s of work each, not 300 s: 34 Jobs in 17 waves
    assert job_sizing.records_per_job(auto(), 1_000_000, 2, slow_start) == 29_412
    assert job_sizing.records_per_job(auto(recordsPerJob=250), 1_000_000, 2, slow_start) == 250


def test_auto_never_makes_more_batches_than_a_config_map_holds() -> None:
    tiny = job_sizing.JobPace(0.001, 0.0, measured=True)
    size = job_sizing.records_per_job(auto(), 10_000_000, 256, tiny)
    assert -(-10_000_000 // size) <= MAX_BATCHES


def test_concurrency_from_the_nodes_cpus_and_the_pods_request() -> None:
    assert job_sizing.concurrency(auto(), 2.0) == 2  # the default request: one CPU
    assert job_sizing.concurrency(auto(), 1.5) == 1
    half = auto(podTemplate={"resources": {"requests": {"cpu": "500m"}}})
    assert job_sizing.concurrency(half, 2.0) == 4
    assert job_sizing.concurrency(auto(), 1000.0) == job_sizing.AUTO_CONCURRENCY_CAP
    assert job_sizing.concurrency(auto(), None) == job_sizing.CONCURRENCY_UNKNOWN
    assert job_sizing.concurrency(auto(maxConcurrentJobs=3), 64.0) == 3


def test_a_running_plan_keeps_the_concurrency_it_planned_unless_the_spec_names_one() -> None:
    status = MigrationPlanStatus.model_validate({"sizing": {"recordsPerJob": 10, "maxConcurrentJobs": 6}})
    assert job_sizing.concurrency_of(auto(), status) == 6
    assert job_sizing.concurrency_of(auto(maxConcurrentJobs=2), status) == 2
    assert job_sizing.concurrency_of(auto(), MigrationPlanStatus()) == job_sizing.CONCURRENCY_UNKNOWN


def test_the_pace_comes_from_the_plan_then_the_latest_sibling_that_measured_one() -> None:
    measured = Throughput(job_records_per_second=80.0, job_startup_seconds=6.0)
    older = Throughput(job_records_per_second=20.0, job_startup_seconds=30.0)
    siblings = (
        SiblingPlan("old", NOW - datetime.timedelta(days=2), MigrationPhase.SUCCEEDED, throughput=older),
        SiblingPlan("new", NOW - datetime.timedelta(days=1), MigrationPhase.SUCCEEDED, throughput=measured),
        SiblingPlan("unmeasured", NOW, MigrationPhase.FAILED, throughput=Throughput(records_per_second=5.0)),
    )
    assert job_sizing.measured_pace(None, siblings) == measured
    own = Throughput(job_records_per_second=40.0, job_startup_seconds=9.0)
    assert job_sizing.measured_pace(own, siblings) == own
    assert job_sizing.measured_pace(None, ()) is None
    pace = job_sizing.pace(auto(), measured)
    assert (pace.records_per_second, pace.startup_s, pace.measured) == (80.0, 6.0, True)
    two_cpus = auto(podTemplate={"resources": {"requests": {"cpu": "2"}}})
    assert job_sizing.pace(two_cpus, None) == job_sizing.JobPace(100.0, 10.0, measured=False)


def test_the_basis_says_what_was_estimated_and_what_was_read() -> None:
    basis = job_sizing.sizing_basis(auto(), ESTIMATE, 2.0)
    assert "estimated, nothing measured yet" in basis
    assert "2 CPUs on the nodes, 1 CPU per pod" in basis
    assert "no node could be read" in job_sizing.sizing_basis(auto(), ESTIMATE, None)
    assert job_sizing.sizing_basis(auto(recordsPerJob=5, maxConcurrentJobs=1), ESTIMATE, 2.0) == (
        "set in spec.batching"
    )


def test_offered_cpus_count_ready_schedulable_matching_nodes() -> None:
    def node(
        cpu: str, ready: bool = True, unschedulable: bool = False, pool: str = "cpu"
    ) -> dict[str, object]:
        return {
            "metadata": {"labels": {"pool": pool}},
            "spec": {"unschedulable": unschedulable},
            "status": {
                "allocatable": {"cpu": cpu},
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }

    nodes = [
        node("4"),
        node("3500m"),
        node("8", ready=False),
        node("8", unschedulable=True),
        node("16", pool="gpu"),
    ]
    assert offered_cpus(nodes, {}) == 23.5
    assert offered_cpus(nodes, {"pool": "cpu"}) == 7.5


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("2", "2"), (3, "3"), ("1.5", "1.5"), ("4Gi", "4294967296"), ("1e3", "1000")],
)
def test_parse_quantity(text: str | int, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


def test_parse_quantity_refuses_what_is_not_one() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("two")
