"""torch's thread pool is sized from the pod's CPU request or limit, not the node's cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vector_operator.contract.assignment import CPU_LIMIT_ENV, CPU_REQUEST_ENV
from vector_operator.worker.cpu_budget import available_cpus, cgroup_cpu_limit


@pytest.mark.parametrize(
    ("cpu_max", "limit"), [("200000 100000", 2.0), ("50000 100000", 0.5), ("max 100000", None)]
)
def test_reads_cgroup_v2_limits(tmp_path: Path, cpu_max: str, limit: float | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    assert cgroup_cpu_limit(tmp_path) == limit


def test_reads_cgroup_v1_limits(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_a_fractional_limit_rounds_up_and_never_exceeds_the_affinity(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000")
    assert available_cpus(tmp_path, {}) == 1
    (tmp_path / "cpu.max").write_text(f"{1000 * 100000} 100000")
    assert available_cpus(tmp_path, {}) == len(os.sched_getaffinity(0))


def test_no_cgroup_means_the_affinity(tmp_path: Path) -> None:
    assert available_cpus(tmp_path, {}) == len(os.sched_getaffinity(0))


def test_the_pods_request_sizes_the_pool_before_its_limit(tmp_path: Path) -> None:
    # what the Job's downward API sets: requests.cpu 1 and no limit (the node's allocatable, 64)
    assert available_cpus(tmp_path, {CPU_REQUEST_ENV: "1000", CPU_LIMIT_ENV: "64000"}) == 1
    # no request: the limit (rounded up), never more than the affinity
    assert available_cpus(tmp_path, {CPU_REQUEST_ENV: "0", CPU_LIMIT_ENV: "500"}) == 1
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path, {CPU_REQUEST_ENV: "0", CPU_LIMIT_ENV: "64000"}) == affinity
    # a cgroup quota below the request still caps it
    (tmp_path / "cpu.max").write_text("100000 100000")
    assert available_cpus(tmp_path, {CPU_REQUEST_ENV: f"{affinity * 1000}"}) == 1
    # unreadable values are ignored
    assert available_cpus(tmp_path, {CPU_REQUEST_ENV: "lots"}) == 1
