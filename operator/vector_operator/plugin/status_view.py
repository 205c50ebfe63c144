"""`kubectl vector status`: collections and plans in one table, read from their typed status:
phase, a progress bar, rate, time left, coherence, sync lag, and the reason a human should read
first. Pure: objects in, rows and a rendered table out."""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from vector_operator.api.collection_reindex import ReindexState
from vector_operator.api.collection_tuning import TuningState
from vector_operator.api.conditions import Condition, ConditionStatus
from vector_operator.api.migrationplan import MigrationPlanStatus
from vector_operator.api.vectorcollection import VectorCollectionStatus
from vector_operator.migration.time_left import duration_text
from vector_operator.plugin.cluster import PluginError
from vector_operator.plugin.typed_objects import parsed

BAR_CELLS = 10
NONE = "-"


@dataclass(frozen=True)
class Row:
    namespace: str
    kind: str
    name: str
    phase: str
    progress: str
    rate: str
    eta: str
    coherence: str
    lag: str
    reason: str


def bar(fraction: float) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * BAR_CELLS)
    return "█" * filled + "░" * (BAR_CELLS - filled) + f" {fraction:4.0%}"


def _reason(conditions: Iterable[Condition] | None, first: str) -> str:
    """The condition to read first: `first` when it does not hold (or holds with news), else the
    one that changed last."""
    listed = list(conditions or [])
    chosen = next((c for c in listed if c.type == first), None)
    if chosen is None and listed:
        chosen = max(listed, key=lambda c: c.last_transition_time)
    if chosen is None:
        return NONE
    state = "" if chosen.status is ConditionStatus.TRUE else "!"
    return f"{state}{chosen.reason}"


def plan_row(item: dict[str, Any]) -> Row:
    status = parsed(MigrationPlanStatus, item, "status")
    progress, quality, throughput = status.progress, status.quality, status.throughput
    done, total = (progress.records_done or 0, progress.records_total or 0) if progress else (0, 0)
    rate = throughput.records_per_second if throughput and throughput.records_per_second else None
    running = status.phase is not None and status.phase.value in ("Generating", "Paused")
    eta = duration_text((total - done) / rate) if rate and running and total > done else NONE
    coherence = quality.coherence.mean if quality and quality.coherence else None
    batches = f" {progress.summary}" if progress and progress.summary else ""
    sync, phase = status.sync, status.phase.value if status.phase else "Pending"
    lag = sync.lag_seconds if sync is not None and sync.worker else None
    return Row(
        namespace=item["metadata"]["namespace"],
        kind="MigrationPlan",
        name=item["metadata"]["name"],
        phase=phase,
        progress=(bar(done / total) if total else bar(0.0)) + batches,
        rate=f"{rate:.1f}/s" if rate else NONE,
        eta=eta,
        coherence=f"{coherence:.3f}" if coherence is not None else NONE,
        lag=duration_text(lag) if lag is not None else NONE,  # the catch-up's, then Syncing's
        reason=_reason(status.conditions, "InSync" if phase == "Syncing" else "Progressing"),
    )


def collection_row(item: dict[str, Any]) -> Row:
    """Entities; while a re-index copies, its progress, copy rate and time left; while a tuning
    study runs, its trials. The reason: UpToDate when it does not hold (a re-index, a migration
    needed), else Ready."""
    status = parsed(VectorCollectionStatus, item, "status")
    quality, reindex, tuning = status.quality, status.reindex, status.tuning
    progress = f"{status.entity_count} entities" if status.entity_count is not None else NONE
    rate = eta = NONE
    if reindex is not None and reindex.state in (ReindexState.COPYING, ReindexState.VALIDATING):
        fraction = reindex.copied / reindex.total if reindex.total else 1.0
        progress = f"{bar(fraction)} reindex {reindex.copied}/{reindex.total}"
        if reindex.vectors_per_second:
            rate = f"{reindex.vectors_per_second:.0f}/s"
            eta = duration_text(max(0, reindex.total - reindex.copied) / reindex.vectors_per_second)
    elif tuning is not None and tuning.state is TuningState.RUNNING:
        progress = f"tuning {tuning.trials_done} trials"
    up_to_date = next((c for c in status.conditions or [] if c.type == "UpToDate"), None)
    first = (
        "UpToDate" if up_to_date is not None and up_to_date.status is not ConditionStatus.TRUE else "Ready"
    )
    return Row(
        namespace=item["metadata"]["namespace"],
        kind="VectorCollection",
        name=item["metadata"]["name"],
        phase=status.phase.value if status.phase else "Pending",
        progress=progress,
        rate=rate,
        eta=eta,
        coherence=f"{quality.coherence:.3f}" if quality and quality.coherence is not None else NONE,
        lag=NONE,
        reason=_reason(status.conditions, first),
    )


def row_of(item: dict[str, Any], errors: list[str]) -> Row:
    """The object's row; one that does not parse shows as Unreadable, its error joins ``errors``
    (one bad object never hides the others)."""
    try:
        return plan_row(item) if item.get("kind") == "MigrationPlan" else collection_row(item)
    except PluginError as error:
        errors.append(str(error))
        metadata = item["metadata"]
        blank = dict.fromkeys(("progress", "rate", "eta", "coherence", "lag"), NONE)
        kind, name = str(item.get("kind")), metadata["name"]
        return Row(metadata["namespace"], kind, name, "Unreadable", reason="!StatusUnreadable", **blank)


def render(rows: list[Row], all_namespaces: bool, now: datetime.datetime, width: int = 160) -> str:
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ["NAMESPACE"] if all_namespaces else []
    columns += ["KIND", "NAME", "PHASE", "PROGRESS", "RATE", "ETA", "COHERENCE", "LAG", "REASON"]
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        cells = [row.namespace] if all_namespaces else []
        cells += [
            row.kind,
            row.name,
            row.phase,
            row.progress,
            row.rate,
            row.eta,
            row.coherence,
            row.lag,
            row.reason,
        ]
        table.add_row(*cells)
    output = io.StringIO()
    Console(file=output, width=width, force_terminal=False, color_system=None).print(table)
    if not rows:
        return f"no VectorCollection or MigrationPlan found ({now:%H:%M:%S})\n"
    return output.getvalue()
