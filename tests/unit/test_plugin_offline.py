"""The plugin's decisions and views without a cluster: the actions' answers off the happy path,
objects that do not parse, a report with gaps, and the kubeconfig flags kubectl users type."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
import yaml
from tests.plan_manifests import minimal_plan

from vector_operator.api.collection_tuning import TuningStatus
from vector_operator.api.migrationplan import MigrationPlanSpec, MigrationPlanStatus
from vector_operator.migration.history import BatchRecord
from vector_operator.plugin import actions, cli, history_view, report, status_view, tuning_view
from vector_operator.plugin.cluster import Cluster, PluginError
from vector_operator.plugin.typed_objects import parsed

SPEC = MigrationPlanSpec.model_validate(minimal_plan("p")["spec"])


def spec(**fields: Any) -> MigrationPlanSpec:
    return SPEC.model_copy(update=fields)


def status(**fields: Any) -> MigrationPlanStatus:
    return MigrationPlanStatus.model_validate(fields)


def test_rollback_refuses_what_it_could_not_do_and_says_why() -> None:
    first_fill = status(phase="Succeeded", newPhysicalCollection="articles__v1")
    with pytest.raises(PluginError, match=r"first collection .* nothing to return to"):
        actions.decide("rollback", "p", spec(), first_fill)
    retired = status(
        phase="Succeeded",
        previousPhysicalCollection="articles__v1",
        newPhysicalCollection="articles__v2",
        previousRetiredAt="2026-11-30T10:00:00Z",
    )
    with pytest.raises(PluginError, match="articles__v1 was dropped at 2026-11-30 10:00:00 UTC"):
        actions.decide("rollback", "p", spec(), retired)
    failed_earlier = status(
        phase="Succeeded",
        previousPhysicalCollection="articles__v1",
        newPhysicalCollection="articles__v2",
        rollback={
            "policy": "manual", "trigger": "spec.rollback: true", "phase": "PostCutover",
            "actions": ["RevertAlias"], "completed": True, "executedAt": "2026-11-30T10:00:00Z",
            "steps": [{"action": "RevertAlias", "result": "Failed", "message": "articles__v1 is gone"}],
        },
    )  # fmt: skip
    with pytest.raises(PluginError, match="changed nothing: RevertAlias: Failed \\(articles__v1 is gone\\)"):
        actions.decide("rollback", "p", spec(rollback=True), failed_earlier)


def test_a_second_abort_or_rollback_after_it_ended_says_so_and_changes_nothing() -> None:
    ended = status(phase="RolledBack")
    aborted = actions.decide("abort", "p", spec(abort=True), ended)
    assert (aborted.message, aborted.spec, aborted.status) == ("p is already aborted", None, None)
    rolled_back = actions.decide("rollback", "p", spec(rollback=True), ended)
    assert (rolled_back.message, rolled_back.spec) == ("p is already rolled back", None)
    with pytest.raises(PluginError, match="has ended"):
        actions.decide("abort", "p", spec(), status(phase="Failed"))


def test_an_object_that_does_not_parse_is_one_line_naming_it_and_never_hides_the_others() -> None:
    bad = {
        "kind": "MigrationPlan",
        "metadata": {"namespace": "search", "name": "skewed"},
        "status": {"phase": "Generating", "fromANewerOperator": 1},
    }
    with pytest.raises(PluginError) as caught:
        parsed(MigrationPlanStatus, bad, "status")
    assert str(caught.value).startswith("MigrationPlan search/skewed: status.fromANewerOperator:")
    assert "\n" not in str(caught.value)
    good = {**bad, "metadata": {"namespace": "search", "name": "fine"}, "status": {"phase": "Generating"}}
    errors: list[str] = []
    rows = [status_view.row_of(item, errors) for item in (bad, good)]
    assert [(row.name, row.phase, row.reason) for row in rows] == [
        ("skewed", "Unreadable", "!StatusUnreadable"),
        ("fine", "Generating", "-"),
    ]
    assert len(errors) == 1


def record(sequence: int, coherence: float | None, p95: float | None) -> BatchRecord:
    return BatchRecord(
        batch=sequence, sequence=sequence, finished_at=1_790_000_000.0 + 60 * sequence, records=50,
        seconds=4.0, p95_ms=p95, coherence=coherence, coherence_min=None, coherence_max=None,
    )  # fmt: skip


def test_a_batch_that_measured_nothing_is_a_gap_in_the_report_not_a_crash(tmp_path: Path) -> None:
    rows = [record(1, 0.97, 80.0), record(2, None, None), record(3, 0.95, 90.0)]  # 2: every record skipped
    answer = report.write_report(tmp_path / "r.png", "p", SPEC, status(phase="Generating"), rows)
    assert answer == f"wrote {tmp_path / 'r.png'}: 3 batches of p"
    image = matplotlib.image.imread(io.BytesIO((tmp_path / "r.png").read_bytes()), format="png")
    assert image.shape[:2] == (900, 1000)


def kubeconfig(tmp_path: Path) -> Path:
    cluster = {"server": "https://127.0.0.1:1"}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "dev-ns"}},
            {"name": "prod", "context": {"cluster": "c", "user": "u", "namespace": "prod-ns"}},
        ],
        "current-context": "dev",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


def test_context_and_kubeconfig_work_as_in_kubectl(tmp_path: Path) -> None:
    path = str(kubeconfig(tmp_path))
    assert Cluster.connect(path, None, None).namespace == "dev-ns"
    assert Cluster.connect(path, "prod", None).namespace == "prod-ns"  # that context's, not the current
    assert Cluster.connect(path, "prod", "mine").namespace == "mine"
    after = cli._parser().parse_args(["status", "--context", "prod", "--kubeconfig", path])
    before = cli._parser().parse_args(["--context", "prod", "--kubeconfig", path, "status"])
    assert (after.context, after.kubeconfig) == (before.context, before.kubeconfig) == ("prod", path)
    assert cli._parser().parse_args(["status"]).context is None


# -- re-indexes and tuning -----------------------------------------------------------------------------

REINDEX = {
    "state": "Copying",
    "source": "nodes__v1",
    "target": "nodes__v2",
    "index": "HNSW/COSINE (M=16, efConstruction=200)",
    "indexFingerprint": "abc",
    "total": 6000,
    "copied": 1500,
    "vectorsPerSecond": 500.0,
}


def collection(**status: Any) -> dict[str, Any]:
    return {
        "kind": "VectorCollection",
        "metadata": {"namespace": "search", "name": "nodes"},
        "status": {"phase": "Reindexing", **status},
    }


def test_status_shows_a_reindex_copy_with_its_rate_and_time_left() -> None:
    up_to_date = {
        "type": "UpToDate",
        "status": "False",
        "reason": "Reindexing",
        "message": "...",
        "lastTransitionTime": "2026-11-30T10:00:00Z",
    }
    ready = {**up_to_date, "type": "Ready", "status": "True", "reason": "Serving"}
    row = status_view.collection_row(collection(reindex=REINDEX, conditions=[ready, up_to_date]))
    assert "reindex 1500/6000" in row.progress
    assert "25%" in row.progress
    assert row.rate == "500/s"
    assert row.eta == "9s"
    assert row.reason == "!Reindexing"  # what is under way, rather than Ready=True


def test_history_lists_reindexes_and_the_policies_that_acted_on_them() -> None:
    finished = {**REINDEX, "state": "Succeeded", "copied": 6000, "finishedAt": "2026-11-30T10:05:00Z"}
    policy = {
        "kind": "RollbackPolicy",
        "metadata": {"namespace": "search", "name": "guard"},
        "status": {
            "executions": [
                {
                    "collection": "nodes",
                    "phase": "PostCutover",
                    "trigger": "searchLatencyP95Ms above 50",
                    "metric": "searchLatencyP95Ms",
                    "threshold": 50,
                    "observedValue": 80,
                    "steps": [{"action": "RevertAlias", "result": "Succeeded", "message": "..."}],
                    "executedAt": "2026-11-30T10:06:00Z",
                }
            ]
        },
    }
    found = history_view.entries([], [policy], "nodes", [collection(reindex=finished)])
    assert [(e.what, e.plan) for e in found] == [
        ("Rollback", "nodes (re-index)"),
        ("Reindex", "nodes (re-index)"),
    ]
    assert (
        "alias moved nodes__v1 -> nodes__v2 (HNSW/COSINE (M=16, efConstruction=200), 500 vectors/s)"
        in found[1].detail
    )
    assert "RevertAlias Succeeded" in found[0].detail
    assert history_view.entries([], [policy], "another", [collection(reindex=finished)]) == []


def test_the_tuning_view_puts_the_current_and_the_best_side_by_side_and_lists_every_trial() -> None:
    study = TuningStatus.model_validate(
        {
            "state": "Succeeded",
            "fingerprint": "f",
            "sampleSize": 19800,
            "queries": 200,
            "trialsDone": 2,
            "ignoredParameters": ["IVF_SQ8.nlist"],
            "trials": [
                {
                    "number": 0,
                    "indexType": "IVF_SQ8",
                    "params": {"nlist": 1024},
                    "searchParams": {"nprobe": 16},
                    "recallAtK": 0.8355,
                    "searchLatencyP95Ms": 14.1,
                },
                {
                    "number": 1,
                    "indexType": "IVF_SQ8",
                    "params": {"nlist": 1024},
                    "searchParams": {"nprobe": 101},
                    "recallAtK": 0.9915,
                    "searchLatencyP95Ms": 14.9,
                },
            ],
            "current": {
                "indexType": "IVF_SQ8",
                "params": {"nlist": 1024},
                "searchParams": {"nprobe": 16},
                "recallAtK": 0.8355,
                "searchLatencyP95Ms": 14.1,
            },
            "best": {
                "indexType": "IVF_SQ8",
                "params": {"nlist": 1024},
                "searchParams": {"nprobe": 101},
                "recallAtK": 0.9915,
                "searchLatencyP95Ms": 14.9,
            },
            "decision": "Recommended",
            "message": "recommends IVF_SQ8 (nlist=1024, nprobe=101)",
        }
    )
    text = tuning_view.render("nodes", study)
    assert "study Succeeded, 2 trial(s) on 19800 vectors, 200 held-out queries" in text
    assert "not searched (the server ignores them): IVF_SQ8.nlist" in text
    assert "recommends IVF_SQ8 (nlist=1024, nprobe=101)" in text
    current = next(line for line in text.splitlines() if line.startswith("current"))
    best = next(line for line in text.splitlines() if line.startswith("best"))
    assert all(word in current for word in ("nprobe=16", "0.8355"))
    assert all(word in best for word in ("nprobe=101", "0.9915"))
    assert "current" in next(line for line in text.splitlines() if line.startswith("0 "))
    assert "no tuning study has run" in tuning_view.render("nodes", None)
