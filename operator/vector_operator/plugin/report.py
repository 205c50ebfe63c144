"""`kubectl vector report PLAN -o FILE.png|.html`: the run of a plan over time from what it
recorded (its batch history): throughput, micro-batch encode time and coherence per batch, with
the plan's warning and critical levels drawn. matplotlib, no display needed."""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from vector_operator.api.migrationplan import MigrationPlanSpec, MigrationPlanStatus
from vector_operator.migration.history import BatchRecord

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 9.0, 100
"""The PNG is 1000 x 900 pixels."""


def _levels(axis: Axes, warning: float | None, critical: float | None, scale: float = 1.0) -> None:
    for value, color, label in ((warning, "orange", "warning"), (critical, "red", "critical")):
        if value is not None:
            axis.axhline(value * scale, color=color, linestyle="--", linewidth=1, label=f"{label} {value:g}")


def _gaps(values: Sequence[float | None]) -> list[float]:
    """A figure a batch did not measure (no sample: every record skipped) is a gap in the line."""
    return [math.nan if value is None else value for value in values]


def figure_png(
    name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus, rows: Sequence[BatchRecord]
) -> bytes:
    times = [datetime.datetime.fromtimestamp(row.finished_at, datetime.UTC) for row in rows]
    figure, (speed, encode, coherence) = plt.subplots(3, 1, figsize=(WIDTH_IN, HEIGHT_IN), sharex=True)
    phase = status.phase.value if status.phase else "Pending"
    figure.suptitle(f"MigrationPlan {name}: {phase}, {len(rows)} batches recorded")
    speed.plot(
        times, [row.records / row.seconds if row.seconds else 0 for row in rows], marker="o", linewidth=1
    )
    speed.set_ylabel("records/s per batch")
    encode.plot(times, _gaps([row.p95_ms for row in rows]), marker="o", linewidth=1, label="micro-batch p95")
    _levels(encode, spec.quality.processing_time_ms.warning, spec.quality.processing_time_ms.critical)
    encode.set_ylabel("encode time (ms)")
    means = _gaps([row.coherence for row in rows])
    coherence.plot(times, means, marker="o", linewidth=1, label="mean")
    lows = _gaps([row.coherence if row.coherence_min is None else row.coherence_min for row in rows])
    coherence.fill_between(times, lows, means, alpha=0.2, label="min..mean")
    _levels(coherence, spec.quality.coherence.warning, spec.quality.coherence.critical)
    coherence.set_ylabel("coherence")
    coherence.set_xlabel("batch finished (UTC)")
    for axis in (speed, encode, coherence):
        axis.grid(alpha=0.3)
    for axis in (encode, coherence):
        axis.legend(loc="lower right", fontsize="small")
    figure.autofmt_xdate()
    output = io.BytesIO()
    figure.savefig(output, format="png", dpi=DPI)
    plt.close(figure)
    return output.getvalue()


def _summary(status: MigrationPlanStatus) -> list[tuple[str, str]]:
    progress, quality = status.progress, status.quality
    figures = [("phase", status.phase.value if status.phase else "Pending")]
    if progress is not None:
        figures += [
            ("batches", progress.summary or "-"),
            ("records written", str(progress.records_done or 0)),
            ("records skipped", f"{progress.records_skipped or 0} {progress.skipped_by_reason or {}}"),
        ]
    if quality is not None and quality.coherence is not None:
        figures.append(("coherence (mean, min)", f"{quality.coherence.mean}, {quality.coherence.min}"))
    figures += [("recommendation", text) for text in status.recommendations or []]
    return figures


def write_report(
    path: Path, name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus, rows: Sequence[BatchRecord]
) -> str:
    """Writes the report (PNG or HTML by the file's suffix); returns a one-line answer."""
    png = figure_png(name, spec, status, rows)
    if path.suffix.lower() == ".png":
        path.write_bytes(png)
    elif path.suffix.lower() in (".html", ".htm"):
        cells = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _summary(status)
        )
        image = base64.b64encode(png).decode()
        title = f"MigrationPlan {html.escape(name)}"
        alt = "throughput, encode time and coherence per batch"
        path.write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<h1>{title}</h1><table>{cells}</table>"
            f"<img alt='{alt}' src='data:image/png;base64,{image}'></body></html>",
            encoding="utf-8",
        )
    else:
        raise ValueError(f"{path}: write a .png or an .html report")
    return f"wrote {path}: {len(rows)} batches of {name}"
