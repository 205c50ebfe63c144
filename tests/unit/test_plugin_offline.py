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

from vector_operator.api.migrationplan import MigrationPlanSpec, MigrationPlanStatus
from vector_operator.migration.history import BatchRecord
from vector_operator.plugin import actions, cli, report, status_view
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
