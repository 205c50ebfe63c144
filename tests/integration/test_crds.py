"""The three CRDs as the real API server enforces them, through the built kubectl: the examples apply,
`kubectl get vectors` and the printer columns show them, `kubectl explain` teaches the fields, the
API server fills in defaults, and a table of invalid manifests is refused with a message that says
what to change (while the valid neighbour of each is accepted)."""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.crd_cases import BASE_COLLECTION, BASE_PLAN, CASES, SQL_SOURCE, Case, invalid_and_valid

from localcluster.cluster import Kubectl, RunningCluster
from vector_operator.api import API_VERSION, MigrationPlan, RollbackPolicy, VectorCollection

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"

Manifest = dict[str, Any]
Edit = Callable[[Manifest], None]


@pytest.fixture(scope="module")
def table_namespace(cluster: RunningCluster, crds: None) -> Iterator[str]:
    """One namespace for the whole table of server-side dry runs (nothing is stored in it)."""
    name = f"t-crd-table-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def _apply(kubectl: Kubectl, manifest: Manifest, *flags: str) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", *flags, "-f", "-", input=json.dumps(manifest), check=False)


def _get(kubectl: Kubectl, resource: str) -> Manifest:
    result: Manifest = json.loads(kubectl("get", resource, "-o", "json").stdout)
    return result


# -- the examples ---------------------------------------------------------------------------------


def _example_files() -> list[Path]:
    """The examples applied one file at a time (kustomizations are applied with -k below)."""
    kustomized = EXAMPLES / "quickstart-in-cluster"
    return sorted(
        p
        for p in EXAMPLES.rglob("*.yaml")
        if p.name not in ("namespace.yaml", "kustomization.yaml") and kustomized not in p.parents
    )


def test_every_example_applies_and_kubectl_get_vectors_lists_all_three_kinds(
    crds: None, kubectl: Kubectl
) -> None:
    # The namespace example creates a cluster-wide object: check it without creating it.
    kubectl("apply", "--dry-run=server", "-f", str(EXAMPLES / "namespace.yaml"))
    for path in _example_files():
        result = kubectl("apply", "-f", str(path), check=False)
        assert result.returncode == 0, f"{path.relative_to(REPO_ROOT)}: {result.stderr}"
    # The in-cluster quickstart (the same three objects, a PostgreSQL beside them) as kustomize
    # builds it: checked by the API server, not created (its PostgreSQL image is not pulled here).
    for directory in ("quickstart", "quickstart-in-cluster"):
        kubectl("apply", "--dry-run=server", "-k", str(EXAMPLES / directory))

    listed = set(kubectl("get", "vectors", "-o", "name").stdout.split())
    assert listed == {
        "vectorcollection.vectors.aios.dev/ai-native-nodes",
        "vectorcollection.vectors.aios.dev/ai-native-patterns",
        "vectorcollection.vectors.aios.dev/articles",
        "migrationplan.vectors.aios.dev/nodes-backfill",
        "migrationplan.vectors.aios.dev/patterns-backfill",
        "migrationplan.vectors.aios.dev/articles-backfill",
        "migrationplan.vectors.aios.dev/articles-reembed",
        "migrationplan.vectors.aios.dev/articles-adopt",
        "rollbackpolicy.vectors.aios.dev/search-guard",
        "rollbackpolicy.vectors.aios.dev/articles-guard",
        "rollbackpolicy.vectors.aios.dev/articles-reembed-guard",
    }
    # What the API server stored parses into the models, and holds the example's spec unchanged
    # (plus defaults).
    stored = _get(kubectl, "vcol/ai-native-nodes")
    assert VectorCollection.model_validate(stored).spec.index.params is not None
    assert stored["spec"]["index"] == {"type": "IVF_SQ8", "params": {"nlist": 1024}}


def test_printer_columns_show_spec_and_status(crds: None, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(EXAMPLES / "ai-native-nodes.yaml"))
    kubectl("apply", "-f", str(EXAMPLES / "rollback-policy.yaml"))
    now = "2026-01-01T00:00:00Z"
    ready = {"type": "Ready", "status": "True", "reason": "Serving", "message": "", "lastTransitionTime": now}
    statuses = {
        "vcol/ai-native-nodes": {"conditions": [ready], "entityCount": 120000, "phase": "Ready"},
        "mplan/nodes-backfill": {
            "phase": "Generating",
            "progress": {"batchesTotal": 40, "batchesSucceeded": 12, "summary": "12/40"},
            "quality": {"coherence": {"min": 0.93, "mean": 0.987, "max": 0.999}},
        },
        "rbp/search-guard": {"triggerCount": 2, "lastExecutedAt": now},
    }
    for resource, status in statuses.items():
        patch = json.dumps({"status": status})
        kubectl("patch", resource, "--subresource=status", "--type=merge", "-p", patch)

    assert _table(kubectl, "vcol") == [
        ["NAME", "READY", "DIMENSION", "INDEX", "METRIC", "ENTITIES", "AGE"],
        ["ai-native-nodes", "True", "512", "IVF_SQ8", "L2", "120000", _AGE],
    ]
    assert _table(kubectl, "mplan") == [
        ["NAME", "PHASE", "PROGRESS", "COHERENCE", "TARGET", "AGE"],
        ["nodes-backfill", "Generating", "12/40", "0.987", "ai-native-nodes", _AGE],
    ]
    assert _table(kubectl, "rbp") == [
        ["NAME", "TRIGGERS", "LAST-EXECUTED", "AGE"],
        ["search-guard", "2", _AGE, _AGE],
    ]
    # The status written through the subresource parses into the models.
    assert MigrationPlan.model_validate(_get(kubectl, "mplan/nodes-backfill")).status is not None
    policy = RollbackPolicy.model_validate(_get(kubectl, "rbp/search-guard"))
    assert policy.status is not None
    assert policy.status.trigger_count == 2


class _Age:
    """Matches any `kubectl get` age column value (``5s``, ``2m3s``, ``330d``)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other[:1].isdigit() and other[-1:] in "smhdy"

    def __repr__(self) -> str:
        return "<age>"


_AGE: Any = _Age()


def _table(kubectl: Kubectl, resource: str) -> list[list[str]]:
    return [line.split() for line in kubectl("get", resource).stdout.splitlines()]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (
            "vectorcollection.spec.index",
            ["The vector index", "params", "Build parameters for the chosen type", "type", "AUTOINDEX"],
        ),
        ("vectorcollection.spec.index.params.nlist", ["number of clusters the vectors are partitioned into"]),
        ("vcol.spec.dimension", ["Number of components of each vector (2..32768)"]),
        (
            "migrationplan.spec.quality.coherence",
            ["critical", "Below this the plan's mean coherence fails validation"],
        ),
        ("mplan.spec.targetRef", ["Cannot be changed"]),
        ("rollbackpolicy.spec.actions", ["RevertAlias (point the alias back at the previous collection)"]),
    ],
)
def test_kubectl_explain_shows_the_descriptions(
    crds: None, cluster: RunningCluster, field: str, expected: list[str]
) -> None:
    text = " ".join(cluster.kubectl("explain", field).stdout.split())
    for fragment in expected:
        assert fragment in text


def test_the_api_server_fills_in_the_defaults(crds: None, kubectl: Kubectl) -> None:
    minimal = {
        "apiVersion": API_VERSION,
        "kind": "VectorCollection",
        "metadata": {"name": "minimal"},
        "spec": {"collectionName": "minimal", "dimension": 384, "embedding": {"model": "m"}},
    }
    kubectl("apply", "-f", "-", input=json.dumps(minimal))
    stored = _get(kubectl, "vcol/minimal")["spec"]
    assert stored == {
        "collectionName": "minimal",
        "dimension": 384,
        "metricType": "COSINE",
        "index": {"type": "AUTOINDEX"},
        "milvus": {"database": "default"},
        "embedding": {"model": "m", "normalize": True, "device": "cpu", "backend": "torch"},
        "primaryKey": {"type": "INT64"},
        "deletionPolicy": "Retain",
        "reindex": {"retention": "24h", "validationSampleSize": 200},
    }
    # The models' defaults are the API server's.
    parsed = VectorCollection.model_validate(minimal).spec
    assert parsed.model_dump(mode="json", by_alias=True, exclude_none=True) == stored

    plan = {
        "apiVersion": API_VERSION,
        "kind": "MigrationPlan",
        "metadata": {"name": "minimal"},
        "spec": {"targetRef": {"name": "minimal"}, "source": {"sql": SQL_SOURCE}},
    }
    kubectl("apply", "-f", "-", input=json.dumps(plan))
    stored_plan = _get(kubectl, "mplan/minimal")["spec"]
    assert stored_plan["batching"] == {
        "recordsPerJob": "auto",
        "maxConcurrentJobs": "auto",
        "backoffLimit": 3,
        "encode": {"minBatchSize": 1, "maxBatchSize": 1024, "targetBatchLatencyMs": 100},
    }
    assert stored_plan["retry"] == 0
    assert stored_plan["quality"] == {
        "sampleSize": 100,
        "coherence": {"warning": 0.9, "critical": 0.85},
        "processingTimeMs": {"warning": 150, "critical": 250},
        "failureRate": {"warning": 0.02, "critical": 0.05},
    }
    assert (stored_plan["mode"], stored_plan["approval"], stored_plan["cutover"], stored_plan["paused"]) == (
        "BlueGreen",
        "Automatic",
        "Automatic",
        False,
    )
    parsed_plan = MigrationPlan.model_validate(plan).spec
    assert parsed_plan.model_dump(mode="json", by_alias=True, exclude_none=True) == stored_plan


def test_target_ref_and_collection_name_cannot_change(crds: None, kubectl: Kubectl) -> None:
    collection = copy.deepcopy(BASE_COLLECTION)
    plan = copy.deepcopy(BASE_PLAN)
    kubectl("apply", "-f", "-", input=json.dumps(collection))
    kubectl("apply", "-f", "-", input=json.dumps(plan))

    plan["spec"]["targetRef"]["name"] = "another-collection"
    refused = _apply(kubectl, plan)
    assert refused.returncode != 0
    assert "targetRef is immutable: to fill another VectorCollection, create a new MigrationPlan" in (
        refused.stderr
    )
    collection["spec"]["collectionName"] = "renamed"
    refused = _apply(kubectl, collection)
    assert refused.returncode != 0
    assert "collectionName cannot be changed" in refused.stderr

    # Their neighbours: other fields of the same objects may change.
    plan["spec"]["targetRef"]["name"] = "ai-native-nodes"
    plan["spec"]["paused"] = True
    assert _apply(kubectl, plan).returncode == 0
    collection["spec"]["collectionName"] = "ai_native_nodes"
    collection["spec"]["searchParams"] = {"nprobe": 32}
    assert _apply(kubectl, collection).returncode == 0
    assert _get(kubectl, "mplan/nodes-backfill")["spec"]["paused"] is True


# -- the table of invalid manifests ---------------------------------------------------------------


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 25
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_an_invalid_manifest_is_refused_with_its_message_and_its_neighbour_accepted(
    cluster: RunningCluster, table_namespace: str, case: Case
) -> None:
    kubectl = Kubectl(cluster, table_namespace)
    invalid, valid = invalid_and_valid(case)
    refused = _apply(kubectl, invalid, "--dry-run=server")
    assert refused.returncode != 0, f"accepted: {json.dumps(invalid['spec'])}"
    assert case.message in refused.stderr

    accepted = _apply(kubectl, valid, "--dry-run=server")
    assert accepted.returncode == 0, accepted.stderr
