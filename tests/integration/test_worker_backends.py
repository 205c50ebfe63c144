"""`embedding.backend: onnx | openvino` with the real bundled MiniLM: the vectors match torch's
float32 ones (normalised or not, truncated or not, texts past the sequence limit, non-ASCII, empty),
the ONNX export is made once and reused, an unwritable cache falls back and says so, two processes
exporting at once leave one complete graph, models the export cannot stand in for are refused, and
a worker run SQLite -> Milvus Lite stores vectors whose coherence against torch is >= 0.99."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import MilvusClient
from worker_support import MODEL, article_texts, entity_count, sql_assignment

from localcluster.milvus_lite import MilvusLiteServer
from vector_operator.api.vectorcollection import EmbeddingBackend, EmbeddingSpec
from vector_operator.worker import onnx_export
from vector_operator.worker.embedding_model import EmbeddingModel, load_embedding_model
from vector_operator.worker.model_loading import ModelNotAvailable, resolve_model
from vector_operator.worker.onnx_encoder import check_supported
from vector_operator.worker.onnx_export import CACHE_ENV, GRAPH_FILE, exported_model, transformer_dir
from vector_operator.worker.quality import cosine_rows

EXPORTED = [EmbeddingBackend.ONNX, EmbeddingBackend.OPENVINO]
LONG_TEXT = " ".join(article_texts(8, seed=3))  # about 600 tokens: past MiniLM's 256
TEXTS = [
    *article_texts(24, seed=11),
    "",
    " ",
    "ok",
    "Tokyo",
    LONG_TEXT,
    LONG_TEXT[::-1],
    "Größenordnung der Straßenbahn: Übermäßig schöne Äpfel für die Bäckerei.",
    "東京の天気は明日も晴れるでしょう。桜の季節が近づいています。",
    "Мы встретимся у старого моста после полудня.",  # noqa: RUF001 (Cyrillic on purpose)
    "مرحبا بكم في المكتبة الجديدة في وسط المدينة",
    "🎉🚀 launch day!!! 🎉 emoji-only: 😀😃😄",
    "SELECT id, body FROM articles WHERE id > 42 ORDER BY id; -- code, not prose",
    "a\tb\nc\r\nd    e",
    "1234567890 3.14159 2.71828 -1e10",
]
SETTINGS: dict[str, dict[str, Any]] = {
    "normalized": {},
    "unnormalized": {"normalize": False},
    "truncateDim": {"truncateDim": 128},
    "truncateDim-unnormalized": {"truncateDim": 128, "normalize": False},
    "maxSeqLength": {"maxSeqLength": 32},
}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the module's tests that do not test the cache itself: MiniLM is
    exported to ONNX once, not per test."""
    return tmp_path_factory.mktemp("backend-cache")


@pytest.fixture
def backend_cache(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(shared_cache))
    return shared_cache


def load(backend: EmbeddingBackend, **settings: Any) -> EmbeddingModel:
    return load_embedding_model(
        EmbeddingSpec.model_validate({"model": MODEL, "backend": backend, **settings})
    )


def encode_in_batches(model: EmbeddingModel, texts: list[str], size: int = 16) -> np.ndarray:
    return np.concatenate([model.encode(texts[start : start + size]) for start in range(0, len(texts), size)])


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("backend", EXPORTED, ids=str)
def test_a_backend_encodes_like_torch_in_float32(
    backend_cache: Path, backend: EmbeddingBackend, settings: dict[str, Any]
) -> None:
    torch_model = load(EmbeddingBackend.TORCH, **settings)
    model = load(backend, **settings)
    assert (model.backend, model.device) == (backend, "cpu")
    assert model.precision in (("float32",) if backend is EmbeddingBackend.ONNX else ("float32", "bfloat16"))
    assert model.max_seq_length == torch_model.max_seq_length

    expected, got = encode_in_batches(torch_model, TEXTS), encode_in_batches(model, TEXTS)
    assert got.dtype == np.float32
    assert got.shape == expected.shape == (len(TEXTS), settings.get("truncateDim", 384))
    cosines = cosine_rows(got, expected)
    assert cosines.min() >= 0.999, dict(zip(TEXTS, cosines.round(5), strict=True))
    # the same length too: normalize and truncateDim are applied as torch applies them (to bfloat16's
    # precision, about 3 significant digits, where OpenVINO computes in it)
    tolerance = 1e-4 if model.precision == "float32" else 5e-3
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(expected, axis=1), rtol=tolerance)
    # and the coherence check's reference is still torch in float32, at the model's full length
    np.testing.assert_allclose(model.reference_encode(TEXTS), torch_model.reference_encode(TEXTS), atol=1e-5)


def test_onnx_runtime_in_float32_is_torch_to_rounding(backend_cache: Path) -> None:
    expected = encode_in_batches(load(EmbeddingBackend.TORCH), TEXTS)
    got = encode_in_batches(load(EmbeddingBackend.ONNX), TEXTS)
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_the_export_is_made_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    onnx_model = load(EmbeddingBackend.ONNX)
    [export] = list(tmp_path.iterdir())
    graph = export / GRAPH_FILE
    before = graph.stat()
    assert json.loads((export / "export.json").read_text())["model"] == MODEL

    # reusing needs no write: a cache baked into a read-only image serves too
    def no_writing(root: Path) -> tuple[Path, list[str]]:
        raise AssertionError(f"a cached export was not reused: {root} would be written")

    monkeypatch.setattr(onnx_export, "writable_cache", no_writing)
    openvino_model = load(EmbeddingBackend.OPENVINO)  # another backend, the same graph
    again = exported_model(onnx_model.model, "all-MiniLM-L6-v2", transformer_dir(resolve_model(MODEL)))

    assert again.export_s is None
    assert again.path == graph  # another name of the same model, the same export
    after = graph.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(tmp_path.iterdir()) == [export]  # no staging directory left over
    assert {path.name for path in export.iterdir()} == {GRAPH_FILE, f"{GRAPH_FILE}.data", "export.json"}
    assert openvino_model.notes == []
    assert openvino_model.encode(["reused"]).shape == (1, 384)


def test_an_unwritable_cache_falls_back_to_a_temporary_directory_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))  # cannot be created, even by root

    model = load(EmbeddingBackend.ONNX)

    assert model.backend is EmbeddingBackend.ONNX
    [note] = model.notes
    assert f"the backend cache {blocker / 'cache'} is not writable" in note
    assert "every Job exports it again" in note
    assert CACHE_ENV in note
    expected = load(EmbeddingBackend.TORCH).encode(TEXTS[:4])
    assert cosine_rows(model.encode(TEXTS[:4]), expected).min() >= 0.9999


EXPORT_IN_A_PROCESS = """
import sys
from sentence_transformers import SentenceTransformer
from vector_operator.worker.model_loading import resolve_model
from vector_operator.worker.onnx_export import exported_model, transformer_dir
path = resolve_model(sys.argv[1])
model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
print(exported_model(model, sys.argv[1], transformer_dir(path)).path)
"""


def test_two_processes_exporting_at_once_leave_one_complete_graph(tmp_path: Path) -> None:
    environ = {**os.environ, CACHE_ENV: str(tmp_path), "HF_HUB_OFFLINE": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", EXPORT_IN_A_PROCESS, MODEL], env=environ, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0].strip() for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    [export] = list(tmp_path.iterdir())  # one directory, no half-written staging copy
    assert outputs == [str(export / GRAPH_FILE)] * 2
    import onnxruntime

    session = onnxruntime.InferenceSession(str(export / GRAPH_FILE), providers=["CPUExecutionProvider"])
    assert [value.name for value in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]


@pytest.fixture(scope="module")
def minilm_parts() -> tuple[Any, Any]:
    from sentence_transformers.sentence_transformer import modules

    path = str(resolve_model(MODEL))
    return modules.Transformer(path), modules.Pooling(384, "mean")


@pytest.mark.parametrize("backend", EXPORTED, ids=str)
def test_a_module_the_export_cannot_stand_in_for_is_refused(
    minilm_parts: tuple[Any, Any], backend: str
) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from tokenizers import Tokenizer

    transformer, pooling = minilm_parts
    check_supported(
        SentenceTransformer(modules=[transformer, pooling, modules.Normalize()]), EmbeddingBackend(backend)
    )

    layers = SentenceTransformer(
        modules=[transformer, modules.WeightedLayerPooling(384, num_hidden_layers=6)]
    )
    with pytest.raises(
        ModelNotAvailable, match=r"this model has WeightedLayerPooling: set embedding.backend: torch"
    ):
        check_supported(layers, EmbeddingBackend(backend))

    tokenizer = Tokenizer.from_file(str(resolve_model(MODEL) / "tokenizer.json"))
    static = SentenceTransformer(modules=[modules.StaticEmbedding(tokenizer, embedding_dim=16)])
    with pytest.raises(ModelNotAvailable, match=r"starts with StaticEmbedding: set embedding.backend: torch"):
        check_supported(static, EmbeddingBackend(backend))


# -- a whole worker run ------------------------------------------------------------------------

ARTICLES = 150


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "articles.db"
    bodies = [*article_texts(ARTICLES), *TEXTS[-9:-1]]  # the articles, then non-ASCII and odd ones
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT)")
        connection.executemany(
            "INSERT INTO articles VALUES (?, ?, ?)",
            [(key, f"Article {key}", body) for key, body in enumerate(bodies)],
        )
    return f"sqlite:///{path}"


@pytest.mark.milvus
@pytest.mark.parametrize("backend", EXPORTED, ids=str)
def test_a_worker_run_on_a_backend_stores_vectors_coherent_with_torch(
    backend_cache: Path,
    backend: EmbeddingBackend,
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    database: str,
) -> None:
    collection = new_collection()
    document = sql_assignment(
        milvus_uri=milvus_server.uri,
        collection=collection,
        table="articles",
        model={"model": MODEL, "backend": backend},
    )
    run = run_worker(document, SOURCE_DATABASE_URL=database)

    assert run.exit_code == 0, run.result
    result = run.result
    assert (result["status"], result["reason"]) == ("Succeeded", "Completed")
    records = ARTICLES + 8
    assert (result["records"]["embedded"], result["records"]["upserted"]) == (records, records)
    assert entity_count(milvus_client, collection) == records
    model = result["model"]
    assert (model["backend"], model["device"], model["dimension"]) == (str(backend), "cpu", 384)
    assert model["precision"] in ("float32", "bfloat16")
    quality = result["quality"]
    assert quality["sampled"] == 100
    assert quality["coherence"]["min"] >= 0.99, quality  # stored vectors against torch float32
    assert quality["retrievability"] == 1.0
    assert not any("not writable" in text for text in result["recommendations"])
