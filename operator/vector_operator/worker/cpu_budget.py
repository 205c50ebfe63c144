"""How many CPUs this pod may really use: its CPU affinity, capped by its cgroup CPU limit.

torch sizes its thread pool from the node's cores, not the pod's limit; on a 64-core node with
``limits.cpu: 2`` that means 64 threads time-sliced onto 2 CPUs' worth of quota, which is far
slower than 2 threads. The worker sizes torch's pool with this number instead.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU limit in CPUs (cgroup v2 ``cpu.max`` or v1 CFS quota); None when unlimited."""
    if (v2 := _read(root / "cpu.max")) is not None:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            try:
                return int(quota) / int(period)
            except (ValueError, ZeroDivisionError):
                return None
        return None
    quota_us, period_us = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if not quota_us or not period_us:
        return None
    try:
        quota_v1, period_v1 = int(quota_us), int(period_us)
    except ValueError:
        return None
    return quota_v1 / period_v1 if quota_v1 > 0 and period_v1 > 0 else None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs to size compute thread pools with (at least 1)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root)
    if limit is None:
        return max(1, affinity)
    return max(1, min(affinity, math.ceil(limit)))
