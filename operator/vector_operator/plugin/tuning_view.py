"""`kubectl vector tuning COLLECTION`: a VectorCollection's latest tuning study as a human reads
it: where it stands, the current parameters and the best measured side by side, the decision, and
every trial. Pure: the status in, text out."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from vector_operator.api.collection_tuning import TunedParameters, TuningStatus

NONE = "-"


def _parameters(found: TunedParameters) -> str:
    values = {**found.params, **found.search_params}
    return f"{found.index_type} " + ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def _figure(value: float | None, digits: int) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def _print(table: Table, width: int) -> str:
    output = io.StringIO()
    Console(file=output, width=width, force_terminal=False, color_system=None).print(table)
    return output.getvalue()


def render(name: str, status: TuningStatus | None, width: int = 140) -> str:
    if status is None:
        return f"{name}: no tuning study has run (set spec.tuning; it starts once the collection serves)\n"
    sample, queries = status.sample_size or NONE, status.queries or NONE
    lines = [
        f"{name}: study {status.state.value}, {status.trials_done} trial(s) on {sample} vectors,"
        f" {queries} held-out queries"
    ]
    if status.skipped_index_types:
        lines.append(f"left out (the server does not build them): {', '.join(status.skipped_index_types)}")
    if status.ignored_parameters:
        lines.append(f"not searched (the server ignores them): {', '.join(status.ignored_parameters)}")
    if status.message:
        lines.append(status.message)
    text = "\n".join(lines) + "\n"
    if status.current is not None:
        side = Table(box=None, pad_edge=False, header_style="bold", title=None)
        for column in ("", "PARAMETERS", "RECALL@K", "P50 MS", "P95 MS"):
            side.add_column(column, no_wrap=True)
        for label, found in (("current", status.current), ("best", status.best)):
            if found is not None:
                side.add_row(
                    label,
                    _parameters(found),
                    _figure(found.recall_at_k, 4),
                    _figure(found.search_latency_p50_ms, 2),
                    _figure(found.search_latency_p95_ms, 2),
                )
        text += "\nmeasured side by side:\n" + _print(side, width)
    if status.trials:
        trials = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("#", "PARAMETERS", "RECALL@K", "P95 MS", "NOTE"):
            trials.add_column(column, no_wrap=True)
        front = set(status.pareto_front or ())
        for trial in status.trials:
            note = trial.failure or ("over budget" if not trial.feasible else "")
            if trial.number in front:
                note = "pareto front"
            if trial.number == 0:
                note = "current" + (f", {note}" if note else "")
            trials.add_row(
                str(trial.number),
                _parameters(trial),
                _figure(trial.recall_at_k, 4),
                _figure(trial.search_latency_p95_ms, 2),
                note,
            )
        text += "\ntrials:\n" + _print(trials, width)
    return text
