"""The loaded sentence-transformers model: the working encoder, a token counter for the reading
thread, and the float32 full-length reference encoder the coherence check compares against.

CPU by default; on CUDA (asked for, or ``auto`` with a GPU visible) the working model runs in
half precision, and the reference stays float32. ``embedding.backend`` onnx or openvino swaps the
working encoder's transformer for ONNX Runtime or OpenVINO on CPU (:mod:`onnx_encoder`); the
reference is always the torch model in float32, so coherence measures what the backend costs.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vector_operator.api.vectorcollection import EmbeddingBackend as Backend
from vector_operator.api.vectorcollection import EmbeddingDevice as Device
from vector_operator.api.vectorcollection import EmbeddingSpec as ModelSettings
from vector_operator.worker.cpu_budget import available_cpus
from vector_operator.worker.model_loading import ModelNotAvailable, resolve_model
from vector_operator.worker.onnx_encoder import BackendEncoder, check_supported, open_backend
from vector_operator.worker.onnx_export import exported_model, transformer_dir

if TYPE_CHECKING:
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]


class TokenCounter:
    """Counts tokens (special tokens included, no truncation) with its own copy of the model's
    tokenizer, so that the reading thread never shares tokenizer state with the encoder."""

    def __init__(self, backend_tokenizer_json: str) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(backend_tokenizer_json)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(list(texts))]


@dataclass
class EmbeddingModel:
    """A loaded model and how it runs."""

    name: str
    model: SentenceTransformer
    device: str
    precision: str
    normalize: bool
    max_seq_length: int
    """The limit the working encoder cuts texts at."""
    full_max_seq_length: int
    """The model's own limit: what the reference encoding uses."""
    dimension: int
    notes: list[str] = field(default_factory=list)
    """Things the result should tell the user about how the model was loaded."""
    backend: Backend = Backend.TORCH
    """What runs the working encoder (torch, also when another backend was asked for on cuda)."""
    _backend_encoder: BackendEncoder | None = None
    _reference: SentenceTransformer | None = None

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Vectors of ``texts`` in one forward pass, as they will be stored."""
        if self._backend_encoder is not None:
            return self._backend_encoder.encode(texts)
        vectors = self.model.encode(
            list(texts),
            batch_size=max(1, len(texts)),
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def token_counter(self) -> TokenCounter:
        backend: Any = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ModelNotAvailable(f"model {self.name!r} has no fast tokenizer; the worker needs one")
        return TokenCounter(backend.to_str())

    def reference_encode(self, texts: Sequence[str]) -> FloatArray:
        """Float32 vectors of ``texts`` at the model's full sequence length (cut to the collection's
        dimension when truncateDim is set). Not thread-safe with :meth:`encode`: the worker calls it
        after the pipeline has finished."""
        reference = self._reference_model()
        working_limit = reference.max_seq_length
        reference.max_seq_length = self.full_max_seq_length
        try:
            vectors = reference.encode(
                list(texts),
                batch_size=32,
                normalize_embeddings=False,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            reference.max_seq_length = working_limit
        return np.asarray(vectors, dtype=np.float32)

    def _reference_model(self) -> SentenceTransformer:
        import torch

        if next(self.model.parameters()).dtype == torch.float32:  # the torch model, whatever the backend
            return self.model
        if self._reference is None:
            self._reference = copy.deepcopy(self.model).float()
        return self._reference


def _choose_device(requested: Device) -> tuple[str, list[str]]:
    import torch

    torch.set_num_threads(available_cpus())  # the pod's CPU limit, not the node's core count
    if requested is Device.CPU:
        return "cpu", []
    if torch.cuda.is_available():
        return "cuda", []
    if requested is Device.CUDA:
        return "cpu", [
            "device cuda was asked for but no GPU is visible to the pod: it ran on CPU. Request a GPU "
            "(resources.limits nvidia.com/gpu) and select GPU nodes, or set device: cpu."
        ]
    return "cpu", []


def load_embedding_model(settings: ModelSettings) -> EmbeddingModel:
    """Loads the model offline on the chosen device; raises :class:`ModelNotAvailable`."""
    path = resolve_model(settings.model)
    device, notes = _choose_device(settings.device)
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(
            str(path), device=device, truncate_dim=settings.truncate_dim, local_files_only=True
        )
    except OSError as error:
        raise ModelNotAvailable(f"model {settings.model!r} at {path} cannot be loaded: {error}") from None
    full_limit = int(model.max_seq_length or model.tokenizer.model_max_length)
    if settings.max_seq_length is not None:
        if settings.max_seq_length > full_limit:
            notes.append(
                f"maxSeqLength {settings.max_seq_length} exceeds the model's limit of {full_limit} tokens: "
                f"{full_limit} was used"
            )
        model.max_seq_length = min(settings.max_seq_length, full_limit)
    precision = "float32"
    if device == "cuda":
        model.half()
        precision = "float16"
    dimension = model.get_embedding_dimension()
    if dimension is None:
        raise ModelNotAvailable(f"model {settings.model!r} does not declare its embedding dimension")
    backend, backend_encoder = Backend.TORCH, None
    if settings.backend is not Backend.TORCH and device == "cuda":
        notes.append(
            f"embedding.backend {settings.backend} runs on CPU only: on cuda the model ran on torch "
            f"({precision})"
        )
    elif settings.backend is not Backend.TORCH:
        backend = settings.backend
        backend_encoder, precision = _open_backend(model, settings, path, notes)
    # One throw-away forward pass: the first call pays for lazy initialisation (kernels, thread
    # pools, CUDA context), which is model loading, not the first micro-batch's latency.
    if backend_encoder is not None:
        backend_encoder.encode(["warm-up"])
    else:
        model.encode(["warm-up"], batch_size=1, show_progress_bar=False)
    log.info(
        "model %s loaded from %s on %s (%s, %s), max_seq_length %s of %s, dimension %s",
        settings.model, path, device, backend, precision, model.max_seq_length, full_limit, dimension,
    )  # fmt: skip
    return EmbeddingModel(
        name=settings.model,
        model=model,
        device=device,
        precision=precision,
        normalize=settings.normalize,
        max_seq_length=int(model.max_seq_length or full_limit),
        full_max_seq_length=full_limit,
        dimension=int(dimension),
        notes=notes,
        backend=backend,
        _backend_encoder=backend_encoder,
    )


def _open_backend(
    model: SentenceTransformer, settings: ModelSettings, path: Path, notes: list[str]
) -> tuple[BackendEncoder, str]:
    """The working encoder and its precision for ``settings.backend``: the model's transformer
    exported to ONNX (or the cached export) and loaded into that runtime, with torch's CPU count."""
    check_supported(model, settings.backend)
    exported = exported_model(model, settings.model, transformer_dir(path))
    notes.extend(exported.notes)
    opened = open_backend(
        model,
        settings.backend,
        exported.path,
        threads=available_cpus(),
        truncate_dim=settings.truncate_dim,
        normalize=settings.normalize,
    )
    return opened.encoder, opened.precision
