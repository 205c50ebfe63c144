"""What the benchmarks read about a process and the machine: memory and CPU from /proc, the load
average, and API timestamps as seconds."""

from __future__ import annotations

import datetime
import os
from pathlib import Path


def memory_kib(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status in KiB, e.g. VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid: int | None, children: bool = False) -> float:
    """User + system CPU of the process so far (with ``children``: and of its waited-for
    children); 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    counted = fields[11:15] if children else fields[11:13]
    return sum(int(value) for value in counted) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def epoch_seconds(text: str | None) -> float | None:
    """An API or audit timestamp (RFC 3339, with or without fractions) as seconds since the epoch."""
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
