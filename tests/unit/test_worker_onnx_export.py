"""The ONNX export cache's pure parts: what its key depends on, which files it hashes, where a
model's transformer lives, and the fallback when the cache cannot be written."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from vector_operator.worker.model_loading import ModelNotAvailable
from vector_operator.worker.onnx_export import (
    CACHE_ENV,
    DEFAULT_CACHE,
    ExportKey,
    cache_root,
    content_digest,
    export_key,
    transformer_dir,
    transformer_files,
    writable_cache,
)

KEY = ExportKey(
    model_path="/models/minilm",
    content_digest="ab" * 32,
    opset=18,
    exporter="torch 2.15.0, onnxscript 0.7.2, format 1",
)


@pytest.mark.parametrize(
    "change",
    [
        {"model_path": "/models/other"},
        {"content_digest": "cd" * 32},
        {"opset": 20},
        {"exporter": "torch 2.16.0, onnxscript 0.7.2, format 1"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_cache_directory_changes_with_the_model_or_the_toolchain(change: dict[str, object]) -> None:
    assert replace(KEY, **change).directory_name != KEY.directory_name
    assert replace(KEY).directory_name == KEY.directory_name
    assert len(KEY.directory_name) == 24
    assert all(character in "0123456789abcdef" for character in KEY.directory_name)


def _model_dir(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (root / name).write_bytes(content)
    return root


def test_the_key_hashes_the_config_and_the_weights_transformers_loads(tmp_path: Path) -> None:
    model = _model_dir(
        tmp_path / "model",
        {
            "config.json": b"{}",
            "model.safetensors": b"weights",
            "pytorch_model.bin": b"old weights",
            "README.md": b"docs",
            "tokenizer.json": b"{}",
        },
    )
    assert [path.name for path in transformer_files(model)] == ["config.json", "model.safetensors"]
    first = content_digest(transformer_files(model))
    (model / "README.md").write_bytes(b"other docs")
    assert content_digest(transformer_files(model)) == first
    (model / "model.safetensors").write_bytes(b"fine-tuned weights")
    assert content_digest(transformer_files(model)) != first

    legacy = _model_dir(tmp_path / "legacy", {"config.json": b"{}", "pytorch_model.bin": b"weights"})
    assert [path.name for path in transformer_files(legacy)] == ["config.json", "pytorch_model.bin"]


def test_a_directory_without_weights_is_refused(tmp_path: Path) -> None:
    empty = _model_dir(tmp_path / "empty", {"config.json": b"{}"})
    with pytest.raises(ModelNotAvailable, match=r"holds no weights .* set embedding.backend: torch"):
        export_key(empty)


def test_the_transformer_lives_where_modules_json_says(tmp_path: Path) -> None:
    modules = [
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
    ]
    old_layout = _model_dir(tmp_path / "old", {"modules.json": json.dumps(modules).encode()})
    assert transformer_dir(old_layout) == old_layout / "0_Transformer"
    modules[1]["path"] = ""
    new_layout = _model_dir(tmp_path / "new", {"modules.json": json.dumps(modules).encode()})
    assert transformer_dir(new_layout) == new_layout
    plain = _model_dir(tmp_path / "plain", {"config.json": b"{}"})
    assert transformer_dir(plain) == plain


def test_the_cache_is_the_environment_s_or_the_default() -> None:
    assert cache_root({CACHE_ENV: "/var/cache/vo"}) == Path("/var/cache/vo")
    assert cache_root({}) == Path(DEFAULT_CACHE).expanduser()


def test_a_cache_that_cannot_be_written_falls_back_and_says_so(tmp_path: Path) -> None:
    assert writable_cache(tmp_path / "cache") == (tmp_path / "cache", [])

    blocker = tmp_path / "a-file"
    blocker.write_text("in the way", encoding="utf-8")
    fallback, [note] = writable_cache(blocker / "cache")
    assert fallback.is_dir()
    assert not fallback.is_relative_to(tmp_path)
    assert note.startswith(f"the backend cache {blocker / 'cache'} is not writable")
    assert f"set {CACHE_ENV} to a writable directory" in note
