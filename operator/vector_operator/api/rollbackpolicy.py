"""RollbackPolicy: when quality metrics of guarded MigrationPlans cross thresholds, undo on its
own (pause, abort, swing the alias back, drop the partial collection) and record what it did."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from vector_operator.api.bounds import MAX_EXECUTIONS, MAX_RECENT_BATCHES
from vector_operator.api.conditions import Conditions
from vector_operator.api.kubernetes_types import OBJECT_NAME_PATTERN, LabelSelector, ObjectMeta
from vector_operator.api.model import (
    ApiModel,
    PreservedObject,
    Rule,
    duration_rule,
    list_type,
    merged,
    validations,
)
from vector_operator.api.resource import AGE, API_VERSION, PrinterColumn, ResourceKind


class TriggerMetric(StrEnum):
    """A quality metric a trigger watches."""

    COHERENCE = "coherence"
    FAILURE_RATE = "failureRate"
    PROCESSING_TIME_MS = "processingTimeMs"
    SEARCH_LATENCY_P95_MS = "searchLatencyP95Ms"
    RECALL_AT_K = "recallAtK"
    SYNC_LAG_SECONDS = "syncLagSeconds"


# Metrics where lower is worse (a trigger fires below a threshold), and fractions in [0, 1].
FALLING_METRICS = (TriggerMetric.COHERENCE, TriggerMetric.RECALL_AT_K)
RISING_METRICS = (
    TriggerMetric.FAILURE_RATE,
    TriggerMetric.PROCESSING_TIME_MS,
    TriggerMetric.SEARCH_LATENCY_P95_MS,
    TriggerMetric.SYNC_LAG_SECONDS,
)
FRACTION_METRICS = (TriggerMetric.COHERENCE, TriggerMetric.RECALL_AT_K, TriggerMetric.FAILURE_RATE)


def _cel_list(values: tuple[StrEnum, ...]) -> str:
    return "[" + ", ".join(f"'{v.value}'" for v in values) + "]"


class GuardedPhase(StrEnum):
    """A phase of a MigrationPlan in which a trigger is evaluated."""

    GENERATING = "Generating"
    VALIDATING = "Validating"
    CUTTING_OVER = "CuttingOver"
    POST_CUTOVER = "PostCutover"
    SYNCING = "Syncing"


class RollbackAction(StrEnum):
    """One step of a rollback."""

    PAUSE = "Pause"
    ABORT = "Abort"
    REVERT_ALIAS = "RevertAlias"
    DROP_PARTIAL_COLLECTION = "DropPartialCollection"
    RESTORE_BACKUP = "RestoreBackup"


class Trigger(ApiModel):
    """A condition on one metric that, while it holds long enough in one of the given phases,
    runs the policy's actions."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="has(self.below) != has(self.above)",
                message="a trigger sets exactly one of below or above",
            ),
            Rule(
                rule=f"!(self.metric in {_cel_list(FALLING_METRICS)} && has(self.above))",
                message="coherence and recallAtK triggers fire when the value falls: use below, not above",
                message_expression="'a ' + self.metric + ' trigger fires when the value falls: use below, "
                "not above'",
                field_path=".above",
            ),
            Rule(
                rule=f"!(self.metric in {_cel_list(RISING_METRICS)} && has(self.below))",
                message="failureRate, processingTimeMs, searchLatencyP95Ms and syncLagSeconds triggers fire "
                "when the value rises: use above, not below",
                message_expression="'a ' + self.metric + ' trigger fires when the value rises: use above, "
                "not below'",
                field_path=".below",
            ),
            Rule(
                rule=f"!(self.metric in {_cel_list(FRACTION_METRICS)}) || "
                "((!has(self.below) || self.below <= 1.0) && (!has(self.above) || self.above <= 1.0))",
                message="coherence, recallAtK and failureRate are fractions: the threshold must be within "
                "[0, 1], e.g. 0.05 for 5 %",
                message_expression="self.metric + ' is a fraction: its threshold must be within [0, 1], "
                "e.g. 0.05 for 5 %'",
            ),
            Rule(
                rule="!(has(self.forBatches) && has(self.forDuration))",
                message="set forBatches or forDuration, not both",
            ),
        )
    )

    metric: TriggerMetric
    """coherence (per batch while Generating; the plan's mean later), failureRate (0..1, per batch),
    processingTimeMs (micro-batch encode time), searchLatencyP95Ms, recallAtK (0..1) or
    syncLagSeconds (how far a Syncing plan's collection is behind its source). After the cutover
    (PostCutover) recallAtK and searchLatencyP95Ms are measured on the new collection itself, every
    probe interval, within the policy's own postCutoverWindow; in phase Syncing, failureRate is the
    share of changed rows the sync skipped and coherence that of the rows its last pass
    re-embedded."""
    below: float | None = Field(default=None, ge=0)
    """Fire when the metric falls below this value (coherence, recallAtK)."""
    above: float | None = Field(default=None, ge=0)
    """Fire when the metric rises above this value (failureRate, processingTimeMs,
    searchLatencyP95Ms, syncLagSeconds)."""
    for_batches: int | None = Field(default=None, ge=1, le=MAX_RECENT_BATCHES)
    """Fire only after this many consecutive batches crossed the threshold (1..32: a plan's status
    keeps its last 32 batches). Omitted (and no forDuration): the first crossing fires."""
    for_duration: str | None = Field(
        default=None, max_length=32, json_schema_extra=validations(duration_rule("forDuration"))
    )
    """Fire only after the threshold stayed crossed this long, e.g. 5m. Omitted (and no
    forBatches): the first crossing fires."""
    phases: list[GuardedPhase] | None = Field(
        default=None, min_length=1, max_length=5, json_schema_extra=list_type("set")
    )
    """Plan phases in which the trigger is evaluated: Generating, Validating, CuttingOver,
    PostCutover (the postCutoverWindow after the alias swing) and Syncing (a Continuous plan after
    its cutover). Omitted: all of them."""


def _object_names(field: str, kind: str) -> Any:
    """An optional set of at most 64 object names of ``kind`` in the policy's namespace."""
    return Field(
        default=None,
        max_length=64,
        json_schema_extra=merged(
            list_type("set"),
            validations(
                Rule(
                    rule=f"self.all(n, n.matches('{OBJECT_NAME_PATTERN}'))",
                    message=f"{field} must be {kind} names: lowercase letters, digits, '-' and '.'",
                )
            ),
        ),
    )


class RollbackPolicySpec(ApiModel):
    """Which MigrationPlans the policy guards, when it fires and what it does."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="has(self.selector) || (has(self.planNames) && size(self.planNames) > 0) || "
                "(has(self.collectionNames) && size(self.collectionNames) > 0)",
                message="set selector, planNames or collectionNames: they say which MigrationPlans (and "
                "which VectorCollections' re-indexes) the policy guards",
            ),
            Rule(
                rule="!(self.actions.exists(a, a == 'DropPartialCollection') && "
                "!self.actions.exists(a, a == 'RevertAlias') && "
                "self.triggers.exists(t, !has(t.phases) || 'PostCutover' in t.phases || "
                "'Syncing' in t.phases))",
                message="a trigger can fire after cutover (PostCutover, Syncing), when the new collection "
                "already serves: DropPartialCollection then needs RevertAlias before it in actions",
                field_path=".actions",
            ),
        )
    )

    selector: LabelSelector | None = None
    """Guard the MigrationPlans in this namespace whose labels match. {} matches all of them."""
    plan_names: list[Annotated[str, Field(max_length=253)]] | None = _object_names(
        "planNames", "MigrationPlan"
    )
    """Guard these MigrationPlans of this namespace, by name (in addition to selector)."""
    collection_names: list[Annotated[str, Field(max_length=253)]] | None = _object_names(
        "collectionNames", "VectorCollection"
    )
    """Guard the re-indexes of these VectorCollections of this namespace, by name. Their
    searchLatencyP95Ms and recallAtK triggers are evaluated on the new index's validation
    (phase Validating: Abort or DropPartialCollection drop the copy before it serves) and on the
    canary probes within postCutoverWindow after the swing (phase PostCutover: RevertAlias points
    the alias back at the collection the re-index replaced). A re-index is judged on each
    measurement: forBatches and forDuration do not apply to it."""
    triggers: list[Trigger] = Field(min_length=1, max_length=32, json_schema_extra=list_type("atomic"))
    """Conditions that fire the actions; any one of them suffices."""
    post_cutover_window: str = Field(
        default="30m", max_length=32, json_schema_extra=validations(duration_rule("postCutoverWindow"))
    )
    """How long after the alias swing this policy's PostCutover triggers stay armed, e.g. 30m. The
    collection the alias served before is kept at least this long, so RevertAlias can return to it."""
    actions: list[RollbackAction] = Field(
        min_length=1,
        max_length=4,
        json_schema_extra=merged(
            list_type("atomic"),
            validations(
                Rule(
                    rule="self.all(a, self.exists_one(b, b == a))",
                    message="actions must not repeat an action",
                ),
                Rule(
                    rule="!(self.exists(a, a == 'RevertAlias') && "
                    "self.exists(a, a == 'DropPartialCollection')) || "
                    "self.indexOf('RevertAlias') < self.indexOf('DropPartialCollection')",
                    message="RevertAlias must come before DropPartialCollection, so the alias never points "
                    "at a dropped collection",
                ),
            ),
        ),
    )
    """What to do when a trigger fires, in this order: Pause (stop launching Jobs until a human
    resumes; recorded in the plan's status.pause, never written into its spec), Abort (stop the
    plan for good, it ends RolledBack), RevertAlias (point the alias back at the previous
    collection), DropPartialCollection (drop the collection the plan was filling), RestoreBackup
    (create a MigrationPlan, <plan>-restore, that restores the backup this plan exported before it
    changed anything into a new physical collection and swings the alias to it: what undoes an
    InPlace plan). Each action is recorded in the plan's status before the next one runs."""


class StepResult(StrEnum):
    """How one action went."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class ActionStep(ApiModel):
    """One action of an execution and its result."""

    action: RollbackAction
    """The action."""
    result: StepResult
    """Succeeded, Failed or Skipped (nothing to do, e.g. no alias swing happened yet)."""
    message: str = Field(default="", max_length=1024)
    """What happened, for a human."""


class Execution(ApiModel):
    """One time the policy fired."""

    plan: str = Field(default="", max_length=253)
    """The MigrationPlan it acted on; empty for a re-index."""
    collection: str | None = Field(default=None, max_length=253)
    """The VectorCollection whose re-index it acted on."""
    phase: GuardedPhase
    """The plan's (or the re-index's) phase when the trigger fired."""
    trigger: str = Field(max_length=256)
    """The trigger that fired, e.g. "coherence below 0.85 for 2 batches"."""
    metric: TriggerMetric
    """The metric of that trigger."""
    threshold: float
    """The trigger's threshold."""
    observed_value: float
    """The value that crossed it."""
    steps: list[ActionStep] = Field(max_length=8, json_schema_extra=list_type("atomic"))
    """The actions taken, in order, with their results."""
    executed_at: datetime
    """When the policy fired."""


class RollbackPolicyConditionType(StrEnum):
    """The condition types a RollbackPolicy reports."""

    READY = "Ready"


class RollbackPolicyStatus(ApiModel):
    """The observed state of the policy, written by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status reflects."""
    conditions: Conditions | None = None
    """Ready: the policy is valid and watching its plans."""
    trigger_count: int | None = Field(default=None, ge=0)
    """How many times the policy has fired."""
    last_executed_at: datetime | None = None
    """When the policy last fired."""
    executions: list[Execution] | None = Field(
        default=None, max_length=MAX_EXECUTIONS, json_schema_extra=list_type("atomic")
    )
    """The latest executions, newest last (at most 20)."""
    kopf: PreservedObject | None = None
    """Kopf's bookkeeping; not for users."""


class RollbackPolicy(ApiModel):
    """A RollbackPolicy as stored by the API server."""

    api_version: Literal["vectors.aios.dev/v1alpha1"] = API_VERSION
    """vectors.aios.dev/v1alpha1"""
    kind: Literal["RollbackPolicy"] = "RollbackPolicy"
    """RollbackPolicy"""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
    spec: RollbackPolicySpec
    """Which plans, when and what."""
    status: RollbackPolicyStatus | None = None
    """The observed state."""


KIND = ResourceKind(
    kind="RollbackPolicy",
    plural="rollbackpolicies",
    short_names=("rbp",),
    description="Guards MigrationPlans: when a quality metric crosses a threshold in a watched phase, "
    "runs its actions in order (Pause, Abort, RevertAlias, DropPartialCollection, RestoreBackup) and records "
    "every execution in its status.",
    spec=RollbackPolicySpec,
    status=RollbackPolicyStatus,
    printer_columns=(
        PrinterColumn("Triggers", ".status.triggerCount", "integer", "How many times the policy fired."),
        PrinterColumn("Last-Executed", ".status.lastExecutedAt", "date", "When the policy last fired."),
        PrinterColumn("Actions", ".spec.actions", "string", "Actions, in order.", priority=1),
        AGE,
    ),
)
