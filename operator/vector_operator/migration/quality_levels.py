"""The QualityDegraded condition: the plan's figures against its warning and critical levels. A
crossing is reported (condition, and an Event when it starts); what fails a batch or a plan is
decided by the gates (batch_results, validating)."""

from __future__ import annotations

from vector_operator.api.migrationplan import QualitySpec
from vector_operator.migration.step import Step


def _findings(
    quality: QualitySpec, coherence: float | None, rate: float | None, p95: float | None
) -> list[str]:
    findings = []
    for level in ("critical", "warning"):
        bound = getattr(quality.coherence, level)
        if coherence is not None and bound is not None and coherence < bound:
            findings.append(f"coherence {coherence:.3f} is below the {level} level {bound}")
            break
    for level in ("critical", "warning"):
        bound = getattr(quality.failure_rate, level)
        if rate is not None and bound is not None and rate > bound:
            findings.append(f"failure rate {rate:.3f} is above the {level} level {bound}")
            break
    for level in ("critical", "warning"):
        bound = getattr(quality.processing_time_ms, level)
        if p95 is not None and bound is not None and p95 > bound:
            findings.append(f"batch processing p95 {p95:.0f} ms is above the {level} level {bound} ms")
            break
    return findings


def report_quality(step: Step) -> None:
    quality = step.status.quality
    if quality is None:
        return
    coherence = quality.coherence.mean if quality.coherence is not None else None
    findings = _findings(step.spec.quality, coherence, quality.failure_rate, quality.processing_time_ms_p95)
    if not findings:
        step.condition("QualityDegraded", False, "WithinThresholds", "quality is within the warning levels")
        return
    message = "; ".join(findings)
    reason = "CriticalThresholdCrossed" if "critical level" in message else "WarningThresholdCrossed"
    previous = step.previous_condition("QualityDegraded")
    if previous is None or previous.status.value != "True" or previous.reason != reason:
        step.event("QualityDegraded", message, warning=True)
    step.condition("QualityDegraded", True, reason, message)
