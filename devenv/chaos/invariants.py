"""What must hold after a chaos run, checked over facts gathered from the API server and Milvus.
Pure: each check returns the violations it found, each a sentence a human can act on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chaos.workload import Expected

Window = tuple[float, float]
"""[start, end] on the driver's monotonic clock."""

MILVUS_GRACE_S = 5.0
"""After Milvus answers again, clients reconnect: failures this long after a restart still count
as "while Milvus was down"."""


@dataclass
class RunFacts:
    """Everything the invariants look at, gathered once the plan ended."""

    rollback_expected: bool
    phase: str
    plan_status: dict[str, Any]
    policy_status: dict[str, Any]
    alias_target: str | None
    physical_collections: list[str]
    """Every Milvus collection whose name starts with the run's alias."""
    served_ids: list[int]
    """Every id in the collection the alias serves (duplicates kept)."""
    query_failures: list[float]
    """When the background query loop's searches failed (monotonic)."""
    milvus_down: list[Window] = field(default_factory=list)
    leftover_jobs: list[str] = field(default_factory=list)
    leftover_pods: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QueryTally:
    during_milvus_outage: int
    otherwise: int


def tally_query_failures(failures: list[float], milvus_down: list[Window]) -> QueryTally:
    """Failed searches split by whether Milvus itself was down (or had just come back)."""
    during = sum(
        1 for at in failures if any(start <= at <= end + MILVUS_GRACE_S for start, end in milvus_down)
    )
    return QueryTally(during, len(failures) - during)


def violations(facts: RunFacts, expected: Expected) -> list[str]:
    found = _outcome(facts)
    found += _records(facts, expected) if facts.phase == "Succeeded" else []
    found += _collections(facts, expected)
    found += _rollbacks(facts)
    tally = tally_query_failures(facts.query_failures, facts.milvus_down)
    if tally.otherwise:
        found.append(f"{tally.otherwise} searches on the alias failed while Milvus was up")
    if facts.leftover_jobs or facts.leftover_pods:
        found.append(
            f"left after the plan ended: Jobs {facts.leftover_jobs[:5]}, pods {facts.leftover_pods[:5]}"
        )
    return found


def _outcome(facts: RunFacts) -> list[str]:
    wanted = "RolledBack" if facts.rollback_expected else "Succeeded"
    if facts.phase != wanted:
        conditions = "; ".join(
            f"{c.get('type')}={c.get('status')} {c.get('reason')}: {(c.get('message') or '')[:300]}"
            for c in facts.plan_status.get("conditions") or []
        )
        return [f"the plan ended {facts.phase}, not {wanted} ({conditions})"]
    return []


def _records(facts: RunFacts, expected: Expected) -> list[str]:
    found = []
    progress = facts.plan_status.get("progress") or {}
    read, done = progress.get("recordsRead") or 0, progress.get("recordsDone") or 0
    skipped = Counter({k: v for k, v in (progress.get("skippedByReason") or {}).items() if v})
    if read != expected.rows:  # rows without a key are read (and skipped) when the plan is made
        found.append(f"rows read {read} != {expected.rows} rows in the table")
    if read != done + sum(skipped.values()):
        found.append(f"rows read {read} != vectors {done} + skipped {sum(skipped.values())} {dict(skipped)}")
    if done != len(expected.embedded_keys):
        found.append(f"recordsDone {done} != {len(expected.embedded_keys)} rows that can be embedded")
    if skipped != expected.skipped:
        found.append(f"skipped by reason {dict(skipped)} != expected {dict(expected.skipped)}")
    return found


def _collections(facts: RunFacts, expected: Expected) -> list[str]:
    found = []
    status = facts.plan_status
    if facts.alias_target is None:
        return ["the alias serves no collection"]
    if facts.phase == "Succeeded":
        if facts.alias_target != status.get("newPhysicalCollection"):
            found.append(
                f"the alias serves {facts.alias_target}, not the plan's {status.get('newPhysicalCollection')}"
            )
        ids = Counter(facts.served_ids)
        duplicated = [key for key, times in ids.items() if times > 1]
        if duplicated:
            found.append(f"{len(duplicated)} ids served more than once, e.g. {duplicated[:5]}")
        missing = expected.embedded_keys - set(ids)
        extra = set(ids) - expected.embedded_keys
        if missing or extra:
            found.append(
                f"the served collection lacks {len(missing)} rows (e.g. {sorted(missing)[:3]}) and has"
                f" {len(extra)} it should not (e.g. {sorted(extra)[:3]})"
            )
    elif facts.served_ids:
        found.append(f"after the rollback the alias serves {len(facts.served_ids)} rows of the plan's run")
    # a failed plan keeps its partial collection for a retry; a rolled-back one dropped it
    kept = status.get("newPhysicalCollection") if facts.phase == "Failed" else None
    allowed = {facts.alias_target, status.get("previousPhysicalCollection"), kept} - {None}
    orphans = sorted(set(facts.physical_collections) - allowed)
    if orphans:
        found.append(f"orphan physical collections: {orphans}")
    return found


def _rollbacks(facts: RunFacts) -> list[str]:
    executions = [
        e for e in facts.policy_status.get("executions") or [] if e.get("plan") == "articles-backfill"
    ]
    wanted = 1 if facts.rollback_expected else 0
    found = []
    if len(executions) != wanted:
        found.append(f"the policy recorded {len(executions)} executions for the plan, not {wanted}")
    if (facts.policy_status.get("triggerCount") or 0) != wanted:
        found.append(f"the policy's triggerCount is {facts.policy_status.get('triggerCount')}, not {wanted}")
    return found
