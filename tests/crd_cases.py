"""The table of invalid manifests: each with the message the API server refuses it with and its
valid neighbour, which must be accepted. The API server is held to it (tests/integration/
test_crds.py), and so is `kubectl vector lint`, offline (tests/unit/test_plugin_lint.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vector_operator.api import API_VERSION

Manifest = dict[str, Any]
Edit = Callable[[Manifest], None]

BASE_COLLECTION: Manifest = {
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
SQL_SOURCE: Manifest = {
    "urlSecretRef": {"name": "nodes-db", "key": "url"},
    "table": "nodes",
    "primaryKey": "id",
    "textColumns": ["title", "body"],
}
BASE_PLAN: Manifest = {
    "apiVersion": API_VERSION,
    "kind": "MigrationPlan",
    "metadata": {"name": "nodes-backfill"},
    "spec": {"targetRef": {"name": "ai-native-nodes"}, "source": {"sql": SQL_SOURCE}},
}
BASE_POLICY: Manifest = {
    "apiVersion": API_VERSION,
    "kind": "RollbackPolicy",
    "metadata": {"name": "search-guard"},
    "spec": {
        "selector": {"matchLabels": {"team": "search"}},
        "triggers": [{"metric": "coherence", "below": 0.85, "phases": ["Generating"]}],
        "actions": ["Pause", "RevertAlias", "DropPartialCollection"],
    },
}
BASES = {"vcol": BASE_COLLECTION, "mplan": BASE_PLAN, "rbp": BASE_POLICY}
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
_BACKUP_LOCATION = {
    "location": {
        "path": "/backups/a/plan-1234abcd",
        "persistentVolumeClaim": {"claimName": "b", "mountPath": "/backups"},
    }
}

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
        _put("spec.fields.0.name", "content_hash"),
        "the field names id, vector and content_hash are the operator's own",
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
        "unknown-backend",
        "vcol",
        _put("spec.embedding.backend", "trt"),
        'spec.embedding.backend: Unsupported value: "trt": supported values: "torch", "onnx", "openvino"',
        _put("spec.embedding.backend", "openvino"),
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
        "source must set exactly one of sql, files or backup",
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
        "source must set exactly one of sql, files or backup",
        _put("spec.source", {"sql": SQL_SOURCE}),
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
        "records-per-job-neither-a-count-nor-auto",
        "mplan",
        _put("spec.batching", {"recordsPerJob": "lots"}),
        "spec.batching.recordsPerJob in body should match '^auto$'",
        _put("spec.batching", {"recordsPerJob": "auto"}),
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
        "in-place-without-backup",
        "mplan",
        _put("spec.mode", "InPlace"),
        "mode: InPlace overwrites the serving collection's vectors: set backup.destination",
        _all(_put("spec.mode", "InPlace"), _put("spec.backup", {"skip": True})),
    ),
    Case(
        "backup-skip-and-destination",
        "mplan",
        _put(
            "spec.backup",
            {
                "skip": True,
                "destination": {
                    "path": "/backups/a",
                    "persistentVolumeClaim": {"claimName": "b", "mountPath": "/backups"},
                },
            },
        ),
        "backup sets a destination, or skip: true to go without one (not both)",
        _put(
            "spec.backup",
            {
                "destination": {
                    "path": "/backups/a",
                    "persistentVolumeClaim": {"claimName": "b", "mountPath": "/backups"},
                }
            },
        ),
    ),
    Case(
        "backup-s3-path-without-s3",
        "mplan",
        _put("spec.backup", {"destination": {"path": "s3://backups/articles"}}),
        "an s3:// path needs s3 (the endpoint and the credentials)",
        _put(
            "spec.backup",
            {
                "destination": {
                    "path": "s3://backups/articles",
                    "s3": {
                        "credentials": {
                            "accessKeyId": {"name": "s3", "key": "id"},
                            "secretAccessKey": {"name": "s3", "key": "secret"},
                        }
                    },
                }
            },
        ),
    ),
    Case(
        "restore-in-place",
        "mplan",
        _all(
            _put("spec.source", {"backup": _BACKUP_LOCATION}),
            _put("spec.mode", "InPlace"),
            _put("spec.backup", {"skip": True}),
        ),
        "a restore (source.backup) builds a new physical collection: use mode BlueGreen",
        _all(_put("spec.mode", "BlueGreen"), _drop("spec.backup")),
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
        "set selector, planNames or collectionNames: they say which MigrationPlans (and which"
        " VectorCollections' re-indexes) the policy guards",
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


def invalid_and_valid(case: Case) -> tuple[Manifest, Manifest]:
    invalid = copy.deepcopy(BASES[case.base])
    case.invalid(invalid)
    valid = copy.deepcopy(BASES[case.base])
    case.invalid(valid)
    case.valid(valid)
    return invalid, valid
