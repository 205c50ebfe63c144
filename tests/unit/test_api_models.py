"""The API models (operator/vector_operator/api) and the CRDs generated from them, without a cluster:
every example parses into the models and back without loss, the examples say what the seed says,
the generated schemas are structural and documented, and the committed CRDs are what the models
generate. What the API server itself enforces is tested in tests/integration/test_crds.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from vector_operator.api import (
    API_VERSION,
    MigrationPlan,
    RollbackPolicy,
    VectorCollection,
    VectorCollectionSpec,
)
from vector_operator.api.crd import (
    KINDS,
    SchemaError,
    custom_resource_definition,
    custom_resource_definitions,
    structural_schema,
    walk,
)
from vector_operator.api.manifests import file_name, to_yaml, write
from vector_operator.api.model import ApiModel

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
MODELS: dict[str, type[BaseModel]] = {
    "VectorCollection": VectorCollection,
    "MigrationPlan": MigrationPlan,
    "RollbackPolicy": RollbackPolicy,
}


def _example_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("apiVersion") == API_VERSION:
                label = f"{path.relative_to(EXAMPLES)}:{document['kind']}/{document['metadata']['name']}"
                documents.append((label, document))
    return documents


EXAMPLE_DOCUMENTS = _example_documents()


def _example(kind: str, name: str) -> dict[str, Any]:
    return next(d for _, d in EXAMPLE_DOCUMENTS if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize(
    ("label", "document"), EXAMPLE_DOCUMENTS, ids=[label for label, _ in EXAMPLE_DOCUMENTS]
)
def test_every_example_round_trips_through_the_models(label: str, document: dict[str, Any]) -> None:
    parsed = MODELS[document["kind"]].model_validate(document)
    assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == document


def test_the_examples_hold_all_three_kinds_and_the_quickstart() -> None:
    kinds = {document["kind"] for _, document in EXAMPLE_DOCUMENTS}
    assert kinds == {"VectorCollection", "MigrationPlan", "RollbackPolicy"}
    quickstart = [label for label, _ in EXAMPLE_DOCUMENTS if label.startswith("quickstart/")]
    assert len(quickstart) == 3


def test_the_seed_collections_are_the_seeds() -> None:
    nodes = VectorCollection.model_validate(_example("VectorCollection", "ai-native-nodes")).spec
    assert (nodes.collection_name, nodes.dimension, nodes.metric_type, nodes.index.type) == (
        "ai_native_nodes",
        512,
        "L2",
        "IVF_SQ8",
    )
    assert nodes.index.params is not None
    assert nodes.index.params.nlist == 1024
    assert nodes.search_params is not None
    assert nodes.search_params.nprobe == 16
    assert nodes.embedding.model == "sentence-transformers/distiluse-base-multilingual-cased-v2"

    patterns = VectorCollection.model_validate(_example("VectorCollection", "ai-native-patterns")).spec
    assert (patterns.collection_name, patterns.dimension, patterns.metric_type, patterns.index.type) == (
        "ai_native_patterns",
        1024,
        "IP",
        "HNSW",
    )
    assert patterns.index.params is not None
    assert (patterns.index.params.hnsw_m, patterns.index.params.ef_construction) == (16, 200)
    assert patterns.embedding.model == "sentence-transformers/all-roberta-large-v1"

    targets = {
        MigrationPlan.model_validate(document).spec.target_ref.name
        for _, document in EXAMPLE_DOCUMENTS
        if document["kind"] == "MigrationPlan"
    }
    assert {"ai-native-nodes", "ai-native-patterns"} <= targets


def test_the_seed_thresholds() -> None:
    for name in ("nodes-backfill", "patterns-backfill"):
        quality = MigrationPlan.model_validate(_example("MigrationPlan", name)).spec.quality
        assert (quality.coherence.warning, quality.coherence.critical) == (0.90, 0.85)
        assert (quality.processing_time_ms.warning, quality.processing_time_ms.critical) == (150, 250)
        assert (quality.failure_rate.warning, quality.failure_rate.critical) == (0.02, 0.05)
    policy = RollbackPolicy.model_validate(_example("RollbackPolicy", "search-guard")).spec
    fired_at = {t.metric: t.below if t.below is not None else t.above for t in policy.triggers}
    assert fired_at == {
        "coherence": 0.85,
        "processingTimeMs": 250,
        "failureRate": 0.05,
        "searchLatencyP95Ms": 50,
    }


def test_the_quickstart_collection_fits_all_minilm_l6_v2() -> None:
    spec = VectorCollection.model_validate(_example("VectorCollection", "articles")).spec
    assert spec.dimension == 384
    assert spec.embedding.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert spec.metric_type in ("COSINE", "L2")


def test_the_quickstart_source_builds_into_200_articles_of_30_to_80_words(tmp_path: Path) -> None:
    database = tmp_path / "articles.db"
    with sqlite3.connect(database) as connection:
        connection.executescript((EXAMPLES / "quickstart" / "articles.sql").read_text())
        rows = connection.execute("SELECT id, title, body, category FROM articles").fetchall()
    assert len(rows) == 200
    assert len({body for _, _, body, _ in rows}) == 200
    assert all(30 <= len(body.split()) <= 80 for _, _, body, _ in rows)
    assert len({category for *_, category in rows}) == 10
    plan = MigrationPlan.model_validate(_example("MigrationPlan", "articles-backfill")).spec
    assert plan.source.sql is not None
    assert plan.source.sql.table == "articles"
    assert plan.source.sql.text_columns is not None
    assert set(plan.source.sql.text_columns) <= {"title", "body"}


def test_the_models_apply_the_schema_bounds() -> None:
    minimal = {"collectionName": "c", "dimension": 384, "embedding": {"model": "m"}}
    spec = VectorCollectionSpec.model_validate(minimal)
    assert spec.model_dump(mode="json", by_alias=True, exclude_unset=True) == minimal
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        VectorCollectionSpec.model_validate({**minimal, "dimension": 1})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        VectorCollectionSpec.model_validate({**minimal, "dimensions": 384})


# -- the generated CRDs ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=[kind.kind for kind in KINDS])
def test_every_field_of_every_crd_has_a_description_and_a_type(kind: Any) -> None:
    crd = custom_resource_definition(kind)
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = 0
    for path, node in walk(root["properties"]["spec"], "spec"):
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), path
        for name, child in node.get("properties", {}).items():
            fields += 1
            assert child.get("description"), f"{path}.{name}"
    assert fields > 10


@pytest.mark.parametrize("kind", KINDS, ids=[kind.kind for kind in KINDS])
def test_no_reference_or_union_is_left(kind: Any) -> None:
    text = to_yaml(custom_resource_definition(kind))
    assert "$ref" not in text
    assert "$defs" not in text
    assert "title:" not in text
    for document in yaml.safe_load_all(text):
        root = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in walk(root):
            assert "anyOf" not in node or node.get("x-kubernetes-int-or-string"), path
            assert node.get("default", "") is not None, path


def test_names_categories_and_status_subresource() -> None:
    crds = {crd["spec"]["names"]["kind"]: crd for crd in custom_resource_definitions()}
    assert {kind: crd["spec"]["names"]["shortNames"] for kind, crd in crds.items()} == {
        "VectorCollection": ["vcol"],
        "MigrationPlan": ["mplan"],
        "RollbackPolicy": ["rbp"],
    }
    for crd in crds.values():
        assert crd["spec"]["group"] == "vectors.aios.dev"
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["names"]["categories"] == ["vectors"]
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1alpha1"
        assert version["subresources"] == {"status": {}}
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        assert status["kopf"]["x-kubernetes-preserve-unknown-fields"] is True
        assert status["observedGeneration"]["type"] == "integer"
        assert status["conditions"]["x-kubernetes-list-type"] == "map"
        assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
        assert status["conditions"]["items"]["required"] == ["type", "status", "reason", "lastTransitionTime"]
    columns = {
        kind: [column["name"] for column in _printer_columns(crd) if "priority" not in column]
        for kind, crd in crds.items()
    }
    assert columns == {
        "VectorCollection": ["Ready", "Dimension", "Index", "Metric", "Entities", "Age"],
        "MigrationPlan": ["Phase", "Progress", "Coherence", "Target", "Age"],
        "RollbackPolicy": ["Triggers", "Last-Executed", "Age"],
    }


def _printer_columns(crd: dict[str, Any]) -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    return columns


def test_the_committed_crds_are_what_the_models_generate() -> None:
    for directory in (REPO_ROOT / "crds", REPO_ROOT / "charts" / "vector-operator" / "crds"):
        # Kopf's own peering CRDs sit beside ours in the chart (helm installs crds/ first).
        ours = [path for path in directory.glob("*.yaml") if not path.name.startswith("kopf.dev_")]
        committed = {path.name: path.read_text() for path in ours}
        generated = {file_name(crd): to_yaml(crd) for crd in custom_resource_definitions()}
        assert committed == generated, f"{directory} is stale: run make manifests"


def test_write_creates_one_file_per_kind(tmp_path: Path) -> None:
    written = write(tmp_path / "out")
    assert sorted(path.name for path in written) == [
        "vectors.aios.dev_migrationplans.yaml",
        "vectors.aios.dev_rollbackpolicies.yaml",
        "vectors.aios.dev_vectorcollections.yaml",
    ]
    first = yaml.safe_load(written[0].read_text())
    assert first["kind"] == "CustomResourceDefinition"


class _Undocumented(ApiModel):
    """A model with a field nobody described."""

    size: int = 1


class _Union(ApiModel):
    """A model whose field is one of two types."""

    value: int | str = 1
    """A number or a word."""


class _UntypedList(ApiModel):
    """A model with a list whose merge semantics are not declared."""

    names: list[str] | None = None
    """Some names."""


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_Undocumented, "_Undocumented.size: every field needs a description"),
        (_Union, "_Union.value: a union of 2 types has no structural schema"),
        (_UntypedList, "_UntypedList.names: a list needs x-kubernetes-list-type"),
    ],
)
def test_the_generator_refuses_a_model_with_no_structural_schema(
    model: type[BaseModel], message: str
) -> None:
    with pytest.raises(SchemaError, match=message):
        structural_schema(model)
