"""How long this process has run, by the kernel's clock: the worker's start-up (interpreter,
imports, model) is measured from the process's start, not from the first line of Python that runs
after the imports."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def seconds_since_start(proc: Path = PROC) -> float | None:
    """Seconds since this process started; None where /proc cannot say (not Linux).

    ``/proc/self/stat`` field 22 is the start in clock ticks after boot and ``/proc/uptime`` the time
    since boot (both at 10 ms resolution; ``/proc/stat``'s boot time has whole seconds only)."""
    try:
        stat = (proc / "self" / "stat").read_text(encoding="ascii")
        uptime = float((proc / "uptime").read_text(encoding="ascii").split()[0])
        # field 2, the command name, is in parentheses and may hold spaces: count from its end
        fields_after_name = stat[stat.rindex(")") + 2 :].split()
        started_ticks = int(fields_after_name[22 - 3])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
