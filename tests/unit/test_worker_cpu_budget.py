"""torch's thread pool is sized from the pod's CPU limit, not the node's cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{1000 * 100000} 100000")
    assert available_cpus(tmp_path) == len(os.sched_getaffinity(0))


def test_no_cgroup_means_the_affinity(tmp_path: Path) -> None:
    assert available_cpus(tmp_path) == len(os.sched_getaffinity(0))
