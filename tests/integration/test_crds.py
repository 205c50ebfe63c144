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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
    return sorted(p for p in EXAMPLES.rglob("*.yaml") if p.name != "namespace.yaml")


def test_every_example_applies_and_kubectl_get_vectors_lists_all_three_kinds(
    crds: None, kubectl: Kubectl
) -> None:
    # The namespace example creates a cluster-wide object: check it without creating it.
    kubectl("apply", "--dry-run=server", "-f", str(EXAMPLES / "namespace.yaml"))
    for path in _example_files():
        result = kubectl("apply", "-f", str(path), check=False)
        assert result.returncode == 0, f"{path.relative_to(REPO_ROOT)}: {result.stderr}"

    listed = set(kubectl("get", "vectors", "-o", "name").stdout.split())
    assert listed == {
        "vectorcollection.vectors.aios.dev/ai-native-nodes",
        "vectorcollection.vectors.aios.dev/ai-native-patterns",
        "vectorcollection.vectors.aios.dev/articles",
        "migrationplan.vectors.aios.dev/nodes-backfill",
        "migrationplan.vectors.aios.dev/patterns-backfill",
        "migrationplan.vectors.aios.dev/articles-backfill",
        "rollbackpolicy.vectors.aios.dev/search-guard",
        "rollbackpolicy.vectors.aios.dev/articles-guard",
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
        "embedding": {"model": "m", "normalize": True, "device": "cpu"},
        "primaryKey": {"type": "INT64"},
        "deletionPolicy": "Retain",
    }
    # The models' defaults are the API server's.
    parsed = VectorCollection.model_validate(minimal).spec
    assert parsed.model_dump(mode="json", by_alias=True, exclude_none=True) == stored

    plan = {
        "apiVersion": API_VERSION,
        "kind": "MigrationPlan",
        "metadata": {"name": "minimal"},
        "spec": {"targetRef": {"name": "minimal"}, "source": {"sql": _SQL_SOURCE}},
    }
    kubectl("apply", "-f", "-", input=json.dumps(plan))
    stored_plan = _get(kubectl, "mplan/minimal")["spec"]
    assert stored_plan["batching"] == {
        "recordsPerJob": 5000,
        "maxConcurrentJobs": 4,
        "backoffLimit": 3,
        "encode": {"minBatchSize": 16, "maxBatchSize": 1024, "targetBatchLatencyMs": 100},
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
    collection = copy.deepcopy(_BASE_COLLECTION)
    plan = copy.deepcopy(_BASE_PLAN)
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

_BASE_COLLECTION: Manifest = {
    "apiVersion": API_VERSION,
    "kind": "VectorCollection",
    "metadata": {"name": "ai-native-nodes"},
    "spec": {
        "collectionName": "ai_native_nodes",
        "dimension": 512,
        "metricType": "L2",
        "index": {"type": "IVF_SQ8", "params": {"nlist": 1024}},
        "searchParams": {"nprobe": 16},
        "fields": [{"name": "source_table", "type": "VARCHAR", "maxLength": 128}],
        "embedding": {"model": "sentence-transformers/distiluse-base-multilingual-cased-v2"},
    },
}
_SQL_SOURCE: Manifest = {
    "urlSecretRef": {"name": "nodes-db", "key": "url"},
    "table": "nodes",
    "primaryKey": "id",
    "textColumns": ["title", "body"],
}
_BASE_PLAN: Manifest = {
    "apiVersion": API_VERSION,
    "kind": "MigrationPlan",
    "metadata": {"name": "nodes-backfill"},
    "spec": {"targetRef": {"name": "ai-native-nodes"}, "source": {"sql": _SQL_SOURCE}},
}
_BASE_POLICY: Manifest = {
    "apiVersion": API_VERSION,
    "kind": "RollbackPolicy",
    "metadata": {"name": "search-guard"},
    "spec": {
        "selector": {"matchLabels": {"team": "search"}},
        "triggers": [{"metric": "coherence", "below": 0.85, "phases": ["Generating"]}],
        "actions": ["Pause", "RevertAlias", "DropPartialCollection"],
    },
}
_BASES = {"vcol": _BASE_COLLECTION, "mplan": _BASE_PLAN, "rbp": _BASE_POLICY}
_HNSW = {"type": "HNSW", "params": {"M": 16, "efConstruction": 200}}


def _put(path: str, value: Any) -> Edit:
    """Sets the field at a dotted path (list positions as numbers), e.g. spec.fields.0.name."""

    def edit(manifest: Manifest) -> None:
        *parents, last = _steps(path)
        node: Any = manifest
        for step in parents:
            node = node[step]
        node[last] = copy.deepcopy(value)

    return edit


def _drop(path: str) -> Edit:
    def edit(manifest: Manifest) -> None:
        *parents, last = _steps(path)
        node: Any = manifest
        for step in parents:
            node = node[step]
        del node[last]

    return edit


def _steps(path: str) -> list[str | int]:
    return [int(step) if step.isdigit() else step for step in path.split(".")]


def _all(*edits: Edit) -> Edit:
    def edit(manifest: Manifest) -> None:
        for one in edits:
            one(manifest)

    return edit


@dataclass(frozen=True)
class Case:
    """An invalid manifest (base + `invalid`), the message the API server must refuse it with, and
    its valid neighbour (base + `valid`), which must be accepted."""

    id: str
    base: str
    invalid: Edit
    message: str
    valid: Edit


_SQL = "spec.source.sql"
_ENCODE = "spec.batching.encode"
_TRIGGER = "spec.triggers.0"

CASES = [
    # VectorCollection: names
    Case(
        "collection-name-with-a-dash",
        "vcol",
        _put("spec.collectionName", "ai-native-nodes"),
        'collectionName "ai-native-nodes" is not a Milvus name: start with a letter or an underscore',
        _put("spec.collectionName", "ai_native_nodes"),
    ),
    Case(
        "collection-name-starting-with-a-digit",
        "vcol",
        _put("spec.collectionName", "2024_nodes"),
        'collectionName "2024_nodes" is not a Milvus name',
        _put("spec.collectionName", "_2024_nodes"),
    ),
    Case(
        "collection-name-too-long",
        "vcol",
        _put("spec.collectionName", "n" * 241),
        "spec.collectionName: Too long: may not be more than 240 bytes",
        _put("spec.collectionName", "n" * 240),
    ),
    Case(
        "database-name-with-a-dot",
        "vcol",
        _put("spec.milvus", {"database": "search.prod"}),
        'milvus.database "search.prod" is not a Milvus name',
        _put("spec.milvus", {"database": "search_prod"}),
    ),
    Case(
        "field-name-with-a-dash",
        "vcol",
        _put("spec.fields.0.name", "source-table"),
        'field name "source-table" is not a Milvus name',
        _put("spec.fields.0.name", "source_table"),
    ),
    # VectorCollection: dimension, metric and the index
    Case(
        "dimension-below-2",
        "vcol",
        _put("spec.dimension", 1),
        "spec.dimension: Invalid value: 1: spec.dimension in body should be greater than or equal to 2",
        _put("spec.dimension", 2),
    ),
    Case(
        "dimension-above-32768",
        "vcol",
        _put("spec.dimension", 32769),
        "spec.dimension in body should be less than or equal to 32768",
        _put("spec.dimension", 32768),
    ),
    Case(
        "unknown-metric",
        "vcol",
        _put("spec.metricType", "EUCLIDEAN"),
        'spec.metricType: Unsupported value: "EUCLIDEAN": supported values: "L2", "IP", "COSINE"',
        _put("spec.metricType", "COSINE"),
    ),
    Case(
        "ivf-without-nlist",
        "vcol",
        _all(_drop("spec.index.params"), _drop("spec.searchParams")),
        "spec.index.params.nlist: Required value: index type IVF_SQ8 needs params.nlist (1..65536)",
        _put("spec.index.params", {"nlist": 128}),
    ),
    Case(
        "nlist-zero",
        "vcol",
        _all(_put("spec.index.params.nlist", 0), _drop("spec.searchParams")),
        "spec.index.params.nlist in body should be greater than or equal to 1",
        _put("spec.index.params.nlist", 1),
    ),
    Case(
        "nlist-above-65536",
        "vcol",
        _put("spec.index.params.nlist", 65537),
        "spec.index.params.nlist in body should be less than or equal to 65536",
        _put("spec.index.params.nlist", 65536),
    ),
    Case(
        "ivf-pq-without-m",
        "vcol",
        _put("spec.index", {"type": "IVF_PQ", "params": {"nlist": 1024}}),
        "index type IVF_PQ needs params.m, the number of sub-vectors",
        _put("spec.index", {"type": "IVF_PQ", "params": {"nlist": 1024, "m": 64}}),
    ),
    Case(
        "ivf-pq-m-not-dividing-the-dimension",
        "vcol",
        _put("spec.index", {"type": "IVF_PQ", "params": {"nlist": 1024, "m": 48}}),
        "spec.index.params.m: Invalid value: index.params.m must divide dimension evenly",
        _put("spec.index", {"type": "IVF_PQ", "params": {"nlist": 1024, "m": 32, "nbits": 8}}),
    ),
    Case(
        "hnsw-without-ef-construction",
        "vcol",
        _all(_put("spec.index", {"type": "HNSW", "params": {"M": 16}}), _drop("spec.searchParams")),
        "index type HNSW needs params.M (2..2048) and params.efConstruction (at least 1)",
        _put("spec.index", _HNSW),
    ),
    Case(
        "hnsw-m-below-2",
        "vcol",
        _all(_put("spec.index", _HNSW), _put("spec.index.params.M", 1), _drop("spec.searchParams")),
        "spec.index.params.M in body should be greater than or equal to 2",
        _put("spec.index.params.M", 2),
    ),
    Case(
        "hnsw-m-above-2048",
        "vcol",
        _all(_put("spec.index", _HNSW), _put("spec.index.params.M", 2049), _drop("spec.searchParams")),
        "spec.index.params.M in body should be less than or equal to 2048",
        _put("spec.index.params.M", 2048),
    ),
    Case(
        "hnsw-ef-construction-zero",
        "vcol",
        _all(
            _put("spec.index", _HNSW), _put("spec.index.params.efConstruction", 0), _drop("spec.searchParams")
        ),
        "spec.index.params.efConstruction in body should be greater than or equal to 1",
        _put("spec.index.params.efConstruction", 1),
    ),
    Case(
        "nlist-on-hnsw",
        "vcol",
        _put("spec.index", {"type": "HNSW", "params": {"M": 16, "efConstruction": 200, "nlist": 8}}),
        "params.nlist applies only to the index types IVF_FLAT, IVF_SQ8 and IVF_PQ, not to HNSW: remove it",
        _all(_put("spec.index", _HNSW), _put("spec.searchParams", {"ef": 64})),
    ),
    Case(
        "hnsw-params-on-ivf",
        "vcol",
        _put("spec.index.params", {"nlist": 1024, "M": 16}),
        "params.M and params.efConstruction apply only to the index type HNSW, not to IVF_SQ8",
        _put("spec.index.params", {"nlist": 1024}),
    ),
    Case(
        "nprobe-above-nlist",
        "vcol",
        _put("spec.searchParams.nprobe", 2048),
        "searchParams.nprobe must not exceed index.params.nlist",
        _put("spec.searchParams.nprobe", 1024),
    ),
    Case(
        "ef-on-ivf",
        "vcol",
        _put("spec.searchParams", {"ef": 64}),
        "searchParams.ef applies only to the index type HNSW",
        _put("spec.searchParams", {"nprobe": 64}),
    ),
    # VectorCollection: fields, embedding, connection
    Case(
        "varchar-without-max-length",
        "vcol",
        _drop("spec.fields.0.maxLength"),
        "field source_table is VARCHAR and needs maxLength (1..65535)",
        _put("spec.fields.0.maxLength", 65535),
    ),
    Case(
        "max-length-on-int64",
        "vcol",
        _put("spec.fields.0.type", "INT64"),
        "maxLength applies only to VARCHAR fields, and field source_table is INT64",
        _all(_put("spec.fields.0.type", "INT64"), _drop("spec.fields.0.maxLength")),
    ),
    Case(
        "duplicate-field-names",
        "vcol",
        _put("spec.fields", [{"name": "a", "type": "INT64"}, {"name": "a", "type": "BOOL"}]),
        'spec.fields[1]: Duplicate value: {"name":"a"}',
        _put("spec.fields", [{"name": "a", "type": "INT64"}, {"name": "b", "type": "BOOL"}]),
    ),
    Case(
        "reserved-field-name",
        "vcol",
        _put("spec.fields.0.name", "vector"),
        "the field names id and vector are the operator's own",
        _put("spec.fields.0.name", "vector_source"),
    ),
    Case(
        "truncate-dim-not-the-dimension",
        "vcol",
        _put("spec.embedding.truncateDim", 256),
        "embedding.truncateDim must equal dimension",
        _put("spec.embedding.truncateDim", 512),
    ),
    Case(
        "embedding-without-model",
        "vcol",
        _put("spec.embedding", {"normalize": True}),
        "spec.embedding.model: Required value",
        _put("spec.embedding", {"normalize": True, "model": "sentence-transformers/all-MiniLM-L6-v2"}),
    ),
    Case(
        "unknown-device",
        "vcol",
        _put("spec.embedding.device", "tpu"),
        'spec.embedding.device: Unsupported value: "tpu": supported values: "cpu", "cuda", "auto"',
        _put("spec.embedding.device", "auto"),
    ),
    Case(
        "uri-without-scheme",
        "vcol",
        _put("spec.milvus", {"uri": "milvus.milvus.svc:19530"}),
        "milvus.uri must be http://HOST:PORT, https://HOST:PORT or tcp://HOST:PORT",
        _put("spec.milvus", {"uri": "http://milvus.milvus.svc:19530"}),
    ),
    Case(
        "tls-settings-without-tls",
        "vcol",
        _put("spec.milvus", {"tls": {"serverName": "milvus.example"}}),
        "caSecretRef, serverName and insecureSkipVerify take effect only with TLS: set tls.enabled: true",
        _put("spec.milvus", {"tls": {"enabled": True, "serverName": "milvus.example"}}),
    ),
    Case(
        "misspelt-field",
        "vcol",
        _all(_drop("spec.dimension"), _put("spec.dimensions", 512)),
        'unknown field "spec.dimensions"',
        _all(_drop("spec.dimensions"), _put("spec.dimension", 512)),
    ),
    Case(
        "unknown-deletion-policy",
        "vcol",
        _put("spec.deletionPolicy", "Orphan"),
        'spec.deletionPolicy: Unsupported value: "Orphan": supported values: "Retain", "Delete"',
        _put("spec.deletionPolicy", "Delete"),
    ),
    # MigrationPlan
    Case(
        "two-source-kinds",
        "mplan",
        _put(
            "spec.source.files",
            {"format": "JSONL", "path": "/data/nodes.jsonl", "idField": "id", "textFields": ["body"]},
        ),
        "source must set exactly one of sql or files",
        _all(
            _drop("spec.source.sql"),
            _put(
                "spec.source.files",
                {"format": "JSONL", "path": "/data/nodes.jsonl", "idField": "id", "textFields": ["body"]},
            ),
        ),
    ),
    Case(
        "no-source-kind",
        "mplan",
        _put("spec.source", {}),
        "source must set exactly one of sql or files",
        _put("spec.source", {"sql": _SQL_SOURCE}),
    ),
    Case(
        "text-columns-and-template",
        "mplan",
        _put(f"{_SQL}.textTemplate", "{title}\n{body}"),
        "source.sql must set exactly one of textColumns (columns joined with newlines) or textTemplate",
        _all(_drop(f"{_SQL}.textColumns"), _put(f"{_SQL}.textTemplate", "{title}\n{body}")),
    ),
    Case(
        "table-with-sql-in-it",
        "mplan",
        _put(f"{_SQL}.table", "nodes; DROP TABLE nodes"),
        "table must be a table name, optionally schema-qualified (schema.table)",
        _put(f"{_SQL}.table", "public.nodes"),
    ),
    Case(
        "field-value-as-sql",
        "mplan",
        _put(f"{_SQL}.fields", {"source_table": "(SELECT password FROM users)"}),
        "each value of fields is a column name, or a constant",
        _put(f"{_SQL}.fields", {"source_table": "'it''s a constant'"}),
    ),
    Case(
        "min-batch-above-max-batch",
        "mplan",
        _put("spec.batching", {"encode": {"minBatchSize": 512, "maxBatchSize": 256}}),
        "encode.minBatchSize must not exceed encode.maxBatchSize",
        _put("spec.batching", {"encode": {"minBatchSize": 256, "maxBatchSize": 256}}),
    ),
    Case(
        "max-batch-above-4096",
        "mplan",
        _put("spec.batching", {"encode": {"maxBatchSize": 8192}}),
        f"{_ENCODE}.maxBatchSize in body should be less than or equal to 4096",
        _put("spec.batching", {"encode": {"maxBatchSize": 4096}}),
    ),
    Case(
        "no-concurrent-jobs",
        "mplan",
        _put("spec.batching", {"maxConcurrentJobs": 0}),
        "spec.batching.maxConcurrentJobs in body should be greater than or equal to 1",
        _put("spec.batching", {"maxConcurrentJobs": 1}),
    ),
    Case(
        "coherence-critical-above-warning",
        "mplan",
        _put("spec.quality", {"coherence": {"warning": 0.85, "critical": 0.90}}),
        "coherence.critical must be below coherence.warning: lower coherence is worse",
        _put("spec.quality", {"coherence": {"warning": 0.90, "critical": 0.85}}),
    ),
    Case(
        "processing-time-critical-below-warning",
        "mplan",
        _put("spec.quality", {"processingTimeMs": {"warning": 250, "critical": 150}}),
        "processingTimeMs.critical must be above processingTimeMs.warning: a longer time is worse",
        _put("spec.quality", {"processingTimeMs": {"warning": 150, "critical": 250}}),
    ),
    Case(
        "failure-rate-critical-below-warning",
        "mplan",
        _put("spec.quality", {"failureRate": {"warning": 0.05, "critical": 0.02}}),
        "failureRate.critical must be above failureRate.warning: a higher failure rate is worse",
        _put("spec.quality", {"failureRate": {"warning": 0.02, "critical": 0.05}}),
    ),
    Case(
        "failure-rate-as-a-percentage",
        "mplan",
        _put("spec.quality", {"failureRate": {"warning": 2, "critical": 5}}),
        "spec.quality.failureRate.warning in body should be less than or equal to 1",
        _put("spec.quality", {"failureRate": {"warning": 0.02, "critical": 0.05}}),
    ),
    Case(
        "coherence-above-1",
        "mplan",
        _put("spec.quality", {"coherence": {"warning": 1.5}}),
        "spec.quality.coherence.warning in body should be less than or equal to 1",
        _put("spec.quality", {"coherence": {"warning": 1.0}}),
    ),
    Case(
        "in-place-with-manual-cutover",
        "mplan",
        _all(_put("spec.mode", "InPlace"), _put("spec.cutover", "Manual")),
        "cutover: Manual needs mode: BlueGreen",
        _all(_put("spec.mode", "BlueGreen"), _put("spec.cutover", "Manual")),
    ),
    Case(
        "relative-file-path",
        "mplan",
        _put(
            "spec.source",
            {"files": {"format": "CSV", "path": "nodes.csv", "idField": "id", "textFields": ["b"]}},
        ),
        "path must be an absolute path in the worker",
        _put("spec.source.files.path", "/srv/nodes.csv"),
    ),
    Case(
        "file-path-outside-the-volume",
        "mplan",
        _put(
            "spec.source",
            {
                "files": {
                    "format": "Parquet",
                    "path": "/srv/nodes.parquet",
                    "persistentVolumeClaim": {"claimName": "exports"},
                    "idField": "id",
                    "textTemplate": "{body}",
                }
            },
        ),
        "path must lie under persistentVolumeClaim.mountPath",
        _put(
            "spec.source",
            {
                "files": {
                    "format": "Parquet",
                    "path": "/data/nodes.parquet",
                    "persistentVolumeClaim": {"claimName": "exports"},
                    "idField": "id",
                    "textTemplate": "{body}",
                }
            },
        ),
    ),
    Case(
        "plan-without-target",
        "mplan",
        _drop("spec.targetRef"),
        "spec.targetRef: Required value",
        _put("spec.targetRef", {"name": "ai-native-patterns"}),
    ),
    # RollbackPolicy
    Case(
        "policy-guarding-nothing",
        "rbp",
        _drop("spec.selector"),
        "set selector or planNames (or both): they say which MigrationPlans the policy guards",
        _put("spec.planNames", ["nodes-backfill"]),
    ),
    Case(
        "trigger-with-below-and-above",
        "rbp",
        _put(f"{_TRIGGER}.above", 0.99),
        "a trigger sets exactly one of below or above",
        _drop(f"{_TRIGGER}.above"),
    ),
    Case(
        "coherence-trigger-above",
        "rbp",
        _all(_drop(f"{_TRIGGER}.below"), _put(f"{_TRIGGER}.above", 0.85)),
        "a coherence trigger fires when the value falls: use below, not above",
        _all(_drop(f"{_TRIGGER}.above"), _put(f"{_TRIGGER}.below", 0.85)),
    ),
    Case(
        "failure-rate-trigger-below",
        "rbp",
        _put(_TRIGGER, {"metric": "failureRate", "below": 0.05}),
        "a failureRate trigger fires when the value rises: use above, not below",
        _put(_TRIGGER, {"metric": "failureRate", "above": 0.05}),
    ),
    Case(
        "failure-rate-trigger-in-percent",
        "rbp",
        _put(_TRIGGER, {"metric": "failureRate", "above": 5}),
        "failureRate is a fraction: its threshold must be within [0, 1], e.g. 0.05 for 5 %",
        _put(_TRIGGER, {"metric": "failureRate", "above": 0.05}),
    ),
    Case(
        "duration-in-words",
        "rbp",
        _put(f"{_TRIGGER}.forDuration", "5 minutes"),
        'forDuration "5 minutes" is not a duration: write it like 30s, 5m, 1h or 1h30m',
        _put(f"{_TRIGGER}.forDuration", "5m"),
    ),
    Case(
        "for-batches-beyond-what-status-keeps",
        "rbp",
        _put(f"{_TRIGGER}.forBatches", 33),
        "forBatches in body should be less than or equal to 32",
        _put(f"{_TRIGGER}.forBatches", 32),
    ),
    Case(
        "for-batches-and-for-duration",
        "rbp",
        _all(_put(f"{_TRIGGER}.forBatches", 2), _put(f"{_TRIGGER}.forDuration", "5m")),
        "set forBatches or forDuration, not both",
        _drop(f"{_TRIGGER}.forDuration"),
    ),
    Case(
        "unknown-phase",
        "rbp",
        _put(f"{_TRIGGER}.phases", ["Planning"]),
        'Unsupported value: "Planning": supported values: "Generating", "Validating", "CuttingOver", '
        '"PostCutover"',
        _put(f"{_TRIGGER}.phases", ["Validating"]),
    ),
    Case(
        "repeated-action",
        "rbp",
        _put("spec.actions", ["Pause", "Pause"]),
        "actions must not repeat an action",
        _put("spec.actions", ["Pause", "Abort"]),
    ),
    Case(
        "drop-before-revert",
        "rbp",
        _put("spec.actions", ["Pause", "DropPartialCollection", "RevertAlias"]),
        "RevertAlias must come before DropPartialCollection",
        _put("spec.actions", ["Pause", "RevertAlias", "DropPartialCollection"]),
    ),
    Case(
        "drop-after-cutover-without-revert",
        "rbp",
        _all(_put(f"{_TRIGGER}.phases", ["PostCutover"]), _put("spec.actions", ["DropPartialCollection"])),
        "DropPartialCollection then needs RevertAlias before it in actions",
        _all(_put(f"{_TRIGGER}.phases", ["Generating"]), _put("spec.actions", ["DropPartialCollection"])),
    ),
    Case(
        "no-actions",
        "rbp",
        _put("spec.actions", []),
        "spec.actions: Invalid value: 0: spec.actions in body should have at least 1 items",
        _put("spec.actions", ["Abort"]),
    ),
    Case(
        "post-cutover-window-in-words",
        "rbp",
        _put("spec.postCutoverWindow", "half an hour"),
        'postCutoverWindow "half an hour" is not a duration',
        _put("spec.postCutoverWindow", "30m"),
    ),
    Case(
        "selector-in-without-values",
        "rbp",
        _put("spec.selector", {"matchExpressions": [{"key": "team", "operator": "In"}]}),
        "values must be non-empty for the operators In and NotIn",
        _put(
            "spec.selector", {"matchExpressions": [{"key": "team", "operator": "In", "values": ["search"]}]}
        ),
    ),
    Case(
        "plan-name-with-capitals",
        "rbp",
        _all(_drop("spec.selector"), _put("spec.planNames", ["Nodes_Backfill"])),
        "planNames must be MigrationPlan names",
        _put("spec.planNames", ["nodes-backfill"]),
    ),
]


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 25
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_an_invalid_manifest_is_refused_with_its_message_and_its_neighbour_accepted(
    cluster: RunningCluster, table_namespace: str, case: Case
) -> None:
    kubectl = Kubectl(cluster, table_namespace)
    invalid = copy.deepcopy(_BASES[case.base])
    case.invalid(invalid)
    refused = _apply(kubectl, invalid, "--dry-run=server")
    assert refused.returncode != 0, f"accepted: {json.dumps(invalid['spec'])}"
    assert case.message in refused.stderr

    valid = copy.deepcopy(_BASES[case.base])
    case.invalid(valid)
    case.valid(valid)
    accepted = _apply(kubectl, valid, "--dry-run=server")
    assert accepted.returncode == 0, accepted.stderr
