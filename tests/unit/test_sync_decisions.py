"""The sync's decisions: the catch-up before the cutover, phase Syncing, the hand-over to a later
plan, pause, the policies' sync triggers, the worker's Deployment and its assignment. Pure: from
one observation, the typed status, the effects and the Events."""

from __future__ import annotations

import datetime
import json
from typing import Any

from tests.unit.plan_observations import (
    ALIAS,
    BATCHES,
    NOW,
    condition,
    generating_status,
    milvus_view,
    plan_spec,
    policy,
    reasons,
    status,
    step,
)

from vector_operator.api.migrationplan import MigrationPhase, MigrationPlanSpec
from vector_operator.contract.sync import SyncAssignment, SyncState, Watermark, slot_name
from vector_operator.migration.effects import (
    CreateChangeSlot,
    Decision,
    RunSyncWorker,
    StopSyncWorker,
    StoreBatchPlan,
    SwingAlias,
    UpdateTarget,
)
from vector_operator.migration.observation import SyncView
from vector_operator.migration.schedule import needs_timer
from vector_operator.migration.sync_progress import WORKER_START_GRACE_S
from vector_operator.migration.sync_worker import TEMPLATE_HASH_ANNOTATION, deployment_name, needs_sync

V1, V2 = f"{ALIAS}__v1", f"{ALIAS}__v2"
WORKER = deployment_name("backfill")


def sync_spec(paused: bool = False, **sync: Any) -> MigrationPlanSpec:
    return plan_spec(
        sync={"changeColumn": "updated_at", "maxLag": "30s", "catchUp": True, **sync}, paused=paused
    )


def state(lag_s: float | None = 5.0, plan_uid: str = "plan-uid", **fields: Any) -> SyncState:
    synced = NOW - datetime.timedelta(seconds=lag_s) if lag_s is not None else None
    return SyncState(plan_uid=plan_uid, synced_through=synced, **fields)


def template_of(spec: MigrationPlanSpec) -> str:
    """The pod template hash of the worker the operator runs for ``spec`` (what it last gave it)."""
    first = step(cutting(), spec, milvus=milvus_view(V1))
    return str(worker_manifest(first)["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION])


def view(
    found: SyncState | None,
    replicas: int = 1,
    available: bool = True,
    spec: MigrationPlanSpec | None = None,
    **fields: Any,
) -> SyncView:
    """The worker as the operator left it for ``spec`` (the catch-up's sync_spec by default)."""
    return SyncView(
        found,
        worker_exists=True,
        worker_replicas=replicas,
        worker_template_hash=template_of(spec or sync_spec()),
        worker_available=available,
        **fields,
    )


def cutting(**fields: Any) -> Any:
    return generating_status(phase="CuttingOver", progress={"recordsDone": 200}, **fields)


def syncing_status(**fields: Any) -> Any:
    base = {"cutOverAt": NOW.isoformat(), "sync": {"worker": WORKER}}
    return generating_status(phase="Syncing", progress={"recordsDone": 200}, **{**base, **fields})


def worker_manifest(decision: Decision) -> dict[str, Any]:
    found = [e for e in decision.effects if isinstance(e, RunSyncWorker)]
    assert len(found) == 1, decision.effects
    return found[0].manifest


# -- the catch-up before the cutover -------------------------------------------------------------


def test_the_alias_waits_for_the_sync_worker_to_catch_up_with_the_backfills_writes() -> None:
    first = step(cutting(), sync_spec(), milvus=milvus_view(V1))
    assert worker_manifest(first)["kind"] == "Deployment"
    assert not any(isinstance(e, SwingAlias) for e in first.effects)
    assert first.status.phase is MigrationPhase.CUTTING_OVER
    assert condition(first, "Progressing").reason == "CatchingUp"
    assert condition(first, "InSync").reason == "CatchingUp"
    assert "SyncWorkerStarted" in reasons(first)
    assert first.status.sync is not None
    assert first.status.sync.worker == WORKER

    behind = step(first.status, sync_spec(), milvus=milvus_view(V1), sync=view(state(lag_s=45)))
    assert not any(isinstance(e, SwingAlias | RunSyncWorker) for e in behind.effects)  # exists already
    assert condition(behind, "InSync").reason == "LagAboveMaxLag"
    assert "45s behind" in condition(behind, "InSync").message

    applied = state(lag_s=4, changes_applied=7, deletes_applied=2, reembedded=5, reused=2, busy_seconds=2.0)
    caught = step(behind.status, sync_spec(), milvus=milvus_view(V1), sync=view(applied))
    assert caught.effects == [
        SwingAlias(ALIAS, to=V2, expected=V1),
        UpdateTarget(V2, V1),
        StopSyncWorker(WORKER),
    ]
    assert caught.status.phase is MigrationPhase.SUCCEEDED
    sync = caught.status.sync
    assert sync is not None
    assert (sync.lag_seconds, sync.changes_applied, sync.deletes_applied) == (4.0, 7, 2)
    assert (sync.reembedded, sync.reused, sync.records_per_second, sync.worker) == (5, 2, 4.5, None)
    assert "caught up 7 changes and 2 deletes" in condition(caught, "Complete").message
    assert condition(caught, "InSync").status == "True"


def test_a_state_left_by_another_plans_worker_is_not_this_plans_progress() -> None:
    other = step(cutting(), sync_spec(), milvus=milvus_view(V1), sync=view(state(lag_s=1, plan_uid="other")))
    assert not any(isinstance(e, SwingAlias) for e in other.effects)
    assert condition(other, "InSync").reason == "CatchingUp"


def test_failing_passes_and_a_worker_that_does_not_run_block_the_cutover_with_their_reason() -> None:
    failing = state(lag_s=90, last_error="reading articles: the source database failed: connection refused",
                    last_error_reason="SourceUnavailable")  # fmt: skip
    blocked = step(cutting(), sync_spec(), milvus=milvus_view(V1), sync=view(failing))
    assert condition(blocked, "Progressing").reason == "SourceUnavailable"
    assert condition(blocked, "Progressing").status == "False"
    assert "connection refused" in condition(blocked, "InSync").message
    assert "SourceUnavailable" in reasons(blocked)

    crashing = view(
        None,
        available=False,
        worker_message="CrashLoopBackOff (last exit code 2)",
        worker_failing=True,
        worker_since=NOW - datetime.timedelta(seconds=5),
    )
    down = step(cutting(), sync_spec(), milvus=milvus_view(V1), sync=crashing)
    assert condition(down, "InSync").reason == "SyncWorkerUnavailable"
    assert "CrashLoopBackOff" in condition(down, "InSync").message
    assert not any(isinstance(e, SwingAlias) for e in down.effects)


def test_a_worker_that_is_starting_is_waited_for_without_a_warning_until_its_grace_ends() -> None:
    def starting(seconds: float) -> SyncView:
        return view(
            None,
            available=False,
            worker_message="its pod is Pending (not scheduled or not started yet)",
            worker_since=NOW - datetime.timedelta(seconds=seconds),
        )

    young = step(cutting(), sync_spec(), milvus=milvus_view(V1), sync=starting(3))
    assert condition(young, "InSync").reason == "CatchingUp"
    assert "is starting" in condition(young, "InSync").message
    assert condition(young, "Progressing").reason == "CatchingUp"
    assert "SyncWorkerUnavailable" not in reasons(young)
    stuck = step(cutting(), sync_spec(), milvus=milvus_view(V1), sync=starting(WORKER_START_GRACE_S + 1))
    assert condition(stuck, "InSync").reason == "SyncWorkerUnavailable"
    assert "Pending" in condition(stuck, "InSync").message
    assert "SyncWorkerUnavailable" in reasons(stuck)


def test_catch_up_false_swings_at_once_and_files_sources_have_no_sync() -> None:
    skipped = step(cutting(), plan_spec(sync={"catchUp": False}), milvus=milvus_view(V1))
    assert skipped.effects == [SwingAlias(ALIAS, to=V2, expected=V1), UpdateTarget(V2, V1)]
    files = plan_spec(
        source={"files": {"format": "JSONL", "path": "/data/a.jsonl", "idField": "id", "textFields": ["t"]}},
        sync={"mode": "Once"},
    )
    assert not needs_sync(files)
    assert needs_sync(plan_spec(sync={"catchUp": True}))  # the default: catch up once


# -- Syncing -------------------------------------------------------------------------------------


def test_a_continuous_plan_stays_syncing_after_the_cutover_and_reports_in_sync() -> None:
    spec = sync_spec(mode="Continuous")
    swung = step(cutting(), spec, milvus=milvus_view(V1), sync=view(state(lag_s=3), spec=spec))
    assert swung.effects == [SwingAlias(ALIAS, to=V2, expected=V1), UpdateTarget(V2, V1)]  # worker kept
    assert swung.status.phase is MigrationPhase.SYNCING
    assert condition(swung, "Complete").reason == "Syncing"
    assert swung.status.completed_at is None
    assert needs_timer(spec, swung.status, NOW)

    steady = step(
        swung.status, spec, milvus=milvus_view(V2), sync=view(state(lag_s=8, changes_applied=3), spec=spec)
    )
    assert condition(steady, "InSync").status == "True"
    assert steady.status.sync is not None
    assert steady.status.sync.changes_applied == 3
    assert steady.effects == []

    behind = step(steady.status, spec, milvus=milvus_view(V2), sync=view(state(lag_s=40), spec=spec))
    assert condition(behind, "InSync").status == "False"
    assert "OutOfSync" in reasons(behind)
    still = step(behind.status, spec, milvus=milvus_view(V2), sync=view(state(lag_s=50), spec=spec))
    assert "OutOfSync" not in reasons(still)  # an Event when it turns, not on every step
    back = step(still.status, spec, milvus=milvus_view(V2), sync=view(state(lag_s=2), spec=spec))
    assert "InSync" in reasons(back)


def test_a_later_plan_that_cut_over_takes_the_sync_over_and_this_one_stops_its_worker() -> None:
    spec = sync_spec(mode="Continuous")
    handed = step(syncing_status(), spec, milvus=milvus_view(f"{ALIAS}__v3", V1, V2, f"{ALIAS}__v3"))
    assert handed.status.phase is MigrationPhase.SUCCEEDED
    assert StopSyncWorker(WORKER) in handed.effects
    assert condition(handed, "InSync").reason == "HandedOver"
    turned_off = step(syncing_status(), sync_spec(mode="Once"), milvus=milvus_view(V2), sync=view(state()))
    assert turned_off.status.phase is MigrationPhase.SUCCEEDED
    assert StopSyncWorker(WORKER) in turned_off.effects


def test_a_paused_sync_scales_its_worker_to_zero_and_resuming_scales_it_back() -> None:
    spec = sync_spec(mode="Continuous")
    paused = step(syncing_status(), sync_spec(mode="Continuous", paused=True), milvus=milvus_view(V2),
                  sync=view(state(), spec=spec))  # fmt: skip
    assert worker_manifest(paused)["spec"]["replicas"] == 0
    assert [e.replicas for e in paused.effects if isinstance(e, RunSyncWorker)] == [0]
    assert condition(paused, "InSync").reason == "Paused"
    resumed = step(paused.status, spec, milvus=milvus_view(V2), sync=view(state(), replicas=0, spec=spec))
    assert [e.replicas for e in resumed.effects if isinstance(e, RunSyncWorker)] == [1]
    assert "SyncWorkerUpdated" not in reasons(resumed)  # the same pod template: only scaled


def test_changed_sync_settings_roll_the_worker_once() -> None:
    before, after = sync_spec(mode="Continuous"), sync_spec(mode="Continuous", interval="30s")
    edited = step(syncing_status(), after, milvus=milvus_view(V2), sync=view(state(), spec=before))
    manifest = worker_manifest(edited)
    assignment = next(e for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"]
                      if e["name"] == "VO_SYNC_ASSIGNMENT")  # fmt: skip
    assert json.loads(assignment["value"])["sync"]["intervalS"] == 30.0
    assert "SyncWorkerUpdated" in reasons(edited)
    rolled = step(edited.status, after, milvus=milvus_view(V2), sync=view(state(), spec=after))
    assert not any(isinstance(e, RunSyncWorker) for e in rolled.effects)


def test_a_policy_on_sync_lag_reverts_the_alias_and_the_plan_stops_syncing() -> None:
    spec = sync_spec(mode="Continuous")
    guard = policy(
        "lag", [{"metric": "syncLagSeconds", "above": 120, "phases": ["Syncing"]}], ["RevertAlias"]
    )
    calm = step(
        syncing_status(),
        spec,
        milvus=milvus_view(V2),
        sync=view(state(lag_s=60), spec=spec),
        policies=(guard,),
    )
    assert calm.status.rollback is None
    fired = step(syncing_status(), spec, milvus=milvus_view(V2), sync=view(state(lag_s=300), spec=spec),
                 policies=(guard,))  # fmt: skip
    record = fired.status.rollback
    assert record is not None
    assert record.phase == "Syncing"
    assert record.observed_value == 300.0
    reverting = step(fired.status, spec, milvus=milvus_view(V2), policies=(guard,))
    assert SwingAlias(ALIAS, to=V1, expected=V2) in reverting.effects
    done = step(reverting.status, spec, milvus=milvus_view(V1), policies=(guard,))
    assert done.status.phase is MigrationPhase.ROLLED_BACK
    assert StopSyncWorker(WORKER) in done.effects


# -- planning, the Deployment and its assignment --------------------------------------------------


def test_logical_decoding_creates_the_slot_before_the_batches_are_stored() -> None:
    spec = plan_spec(sync={"capture": "LogicalDecoding", "mode": "Continuous"})
    planned = step(status(), spec, batch_plan=BATCHES, scanned=True, pinned=None)
    kinds = [type(e) for e in planned.effects]
    assert kinds[:2] == [CreateChangeSlot, StoreBatchPlan]
    assert planned.effects[0] == CreateChangeSlot(slot_name("plan-uid"))
    assert slot_name("0b0a8c1e-7f51-4b43-9f3c-2d2a5c7e9a10") == "vo_0b0a8c1e7f514b439f3c2d2a5c7e9a10"


def test_the_sync_worker_is_a_one_replica_recreate_deployment_owned_by_the_plan() -> None:
    batches = BATCHES.__class__(200, 50, (51, 101, 151), watermark=Watermark(kind="integer", value="41"))
    spec = sync_spec(
        mode="Continuous",
        deletes={"softDeleteColumn": "deleted_at", "fullCheckInterval": "1h"},
        interval="5s",
    )
    manifest = worker_manifest(step(cutting(), spec, milvus=milvus_view(V1), batch_plan=batches))
    assert manifest["metadata"]["name"] == WORKER
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "plan-uid"
    assert manifest["spec"]["strategy"] == {"type": "Recreate"}
    pod = manifest["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Always"
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["command"] == ["vector-operator", "sync"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["VO_SOURCE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "url"}
    assignment = SyncAssignment.model_validate(json.loads(env["VO_SYNC_ASSIGNMENT"]["value"]))
    settings = assignment.sync
    assert (settings.continuous, settings.change_column, settings.interval_s) == (True, "updated_at", 5.0)
    assert (settings.soft_delete_column, settings.full_check_interval_s) == ("deleted_at", 3600.0)
    assert settings.initial_watermark == Watermark(kind="integer", value="41")
    assert settings.delete_unknown_keys is True  # BlueGreen: the collection holds this source alone
    assert assignment.source.soft_delete_column == "deleted_at"
    assert assignment.collection.name == V2
    in_place = worker_manifest(
        step(
            cutting(),
            sync_spec(mode="Continuous").model_copy(update={"mode": "InPlace"}),
            milvus=milvus_view(V1),
        )
    )
    raw = next(
        e
        for e in in_place["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == "VO_SYNC_ASSIGNMENT"
    )
    assert json.loads(raw["value"])["sync"].get("deleteUnknownKeys") is False


def test_watermarks_bind_back_as_the_type_they_were_read_as() -> None:
    stamp = datetime.datetime(2026, 12, 1, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    assert Watermark.of(stamp).python() == stamp
    assert Watermark.of(41).python() == 41
    assert Watermark.of("2026-12-01 03:04:05").python() == "2026-12-01 03:04:05"  # SQLite text stays text
    from decimal import Decimal

    assert Watermark.of(Decimal("12.50")).python() == Decimal("12.50")
    assert SyncState.from_property("not json") is None
    kept = SyncState(plan_uid="p", watermark=Watermark.of(41), changes_applied=3)
    assert SyncState.from_property(kept.to_property()) == kept
