"""How many CPUs this pod may really use: its CPU request (what the scheduler reserved for it, from
the downward API), else its CPU limit, capped by its CPU affinity and its cgroup's CPU quota.

torch sizes its thread pool from the node's cores, not the pod's share; on a 64-core node with
``limits.cpu: 2`` that means 64 threads time-sliced onto 2 CPUs' worth of quota, which is far
slower than 2 threads, and two Jobs packed on a 2-core node by their requests of 1 CPU each would
run 4 threads on 2 cores. The worker sizes torch's pool with this number instead.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from vector_operator.contract.assignment import CPU_LIMIT_ENV, CPU_REQUEST_ENV

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


def _millicores(environ: Mapping[str, str], name: str) -> int | None:
    try:
        value = int(environ.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def pod_cpu_share(environ: Mapping[str, str]) -> float | None:
    """The pod's CPUs from the downward API: its request, else its limit; None when neither is set."""
    millicores = _millicores(environ, CPU_REQUEST_ENV) or _millicores(environ, CPU_LIMIT_ENV)
    return None if millicores is None else millicores / 1000


def available_cpus(root: Path = CGROUP_ROOT, environ: Mapping[str, str] | None = None) -> int:
    """CPUs to size compute thread pools with (at least 1)."""
    environ = os.environ if environ is None else environ
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    caps = [float(affinity)] + [
        share for share in (cgroup_cpu_limit(root), pod_cpu_share(environ)) if share is not None
    ]
    return max(1, math.ceil(min(caps)))
