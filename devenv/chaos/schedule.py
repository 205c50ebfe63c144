"""Which faults a chaos run injects, and when: drawn from one seed, so a failing run replays."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    OPERATOR = "operator"
    """SIGKILLed, then started again."""
    WORKER_POD = "worker-pod"
    """A running worker's process SIGKILLed and its pod deleted."""
    MILVUS = "milvus"
    """Stopped for 5-30 s, then started again on the same data."""
    API_SERVER = "api-server"
    """Restarted (SIGTERM, then started again; etcd keeps the objects)."""
    NODE_AGENT = "node-agent"
    """SIGKILLed (its pods' processes run on, orphaned), then started again."""


@dataclass(frozen=True)
class FaultDraw:
    kind: FaultKind
    delay_s: float
    """Seconds after the previous fault recovered (the first: after the plan was applied)."""
    outage_s: float
    """How long Milvus stays down (the other kinds restart at once)."""


MIN_DELAY_S, MAX_DELAY_S = 3.0, 20.0
MIN_OUTAGE_S, MAX_OUTAGE_S = 5.0, 30.0


def draw_schedule(seed: int, runs: int, per_run: int) -> list[list[FaultDraw]]:
    """``per_run`` faults for each of ``runs`` runs. The kinds come round in shuffled rounds, so
    over ``runs * per_run`` faults each kind is drawn as evenly as the count allows."""
    rng = random.Random(seed)  # noqa: S311 - a replayable draw, not a secret
    kinds: list[FaultKind] = []
    while len(kinds) < runs * per_run:
        round_ = list(FaultKind)
        rng.shuffle(round_)
        kinds += round_
    schedule = []
    for run in range(runs):
        schedule.append(
            [
                FaultDraw(
                    kind=kind,
                    delay_s=round(rng.uniform(MIN_DELAY_S, MAX_DELAY_S), 1),
                    outage_s=round(rng.uniform(MIN_OUTAGE_S, MAX_OUTAGE_S), 1),
                )
                for kind in kinds[run * per_run : (run + 1) * per_run]
            ]
        )
    return schedule


def rollback_runs(seed: int, runs: int) -> list[bool]:
    """Which runs' tables end in rows without text (chaos.workload.FAILING_TAIL), so the policy
    must fire, once: every other run, starting at a seed-drawn one."""
    first = random.Random(seed ^ 0x5EED).randrange(2)  # noqa: S311 - replayable
    return [(run + first) % 2 == 1 for run in range(runs)]
