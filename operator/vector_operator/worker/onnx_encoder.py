"""``embedding.backend: onnx | openvino``: the model's transformer run by ONNX Runtime or OpenVINO
on CPU, everything around it exactly as sentence-transformers runs it.

:meth:`BackendEncoder.encode` computes what ``SentenceTransformer.encode`` does with one part
swapped: the model's own ``preprocess`` (its tokenizer, its working ``max_seq_length``, its default
prompt), then the transformer through the exported ONNX graph (:mod:`onnx_export`), then the
model's own following modules run by torch (``Pooling`` in the mode its config names, ``Dense``,
``Normalize``), then ``truncate_dim`` and ``normalize`` as ``encode`` applies them. Reusing those
modules rather than re-implementing pooling is what keeps the vectors identical; a model with a
module that needs more than the token embeddings (``WeightedLayerPooling`` reads every layer, an
``LSTM`` or a ``Router`` is not a pooling step) is refused with :class:`ModelNotAvailable` before
anything is exported, never approximated.

Both runtimes get the CPUs torch would get (:func:`cpu_budget.available_cpus`): ONNX Runtime as
intra-op threads (idle ones block rather than spin), OpenVINO as ``INFERENCE_NUM_THREADS``; both
release the GIL while they compute, so the worker's reader and writer threads keep overlapping
with encoding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vector_operator.api.vectorcollection import EmbeddingBackend
from vector_operator.worker.model_loading import ModelNotAvailable
from vector_operator.worker.onnx_export import OUTPUT_NAME

if TYPE_CHECKING:
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
TransformerRun = Callable[[Mapping[str, npt.NDArray[np.int64]]], FloatArray]
"""Token ids (and masks) in, token embeddings (batch x sequence x hidden) out."""

FOLLOWING_MODULES = ("Pooling", "Dense", "Normalize", "LayerNorm", "Dropout")
"""The sentence-transformers modules that may follow the transformer: each reads only the token
embeddings, the attention mask or the sentence embedding."""
OPENVINO_PRECISIONS = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def check_supported(model: SentenceTransformer, backend: EmbeddingBackend) -> None:
    """Raises :class:`ModelNotAvailable` unless ``model`` is a Transformer whose token embeddings
    are its model's last hidden state, followed only by :data:`FOLLOWING_MODULES`."""
    from sentence_transformers.sentence_transformer import modules as st_modules

    modules = list(model)
    first = modules[0] if modules else None
    if not isinstance(first, st_modules.Transformer):
        raise ModelNotAvailable(
            f"embedding.backend {backend} runs a Hugging Face transformer, but this model starts with "
            f"{type(first).__name__ if first is not None else 'nothing'}: set embedding.backend: torch"
        )
    text = first.modality_config.get("text") or {}
    output = text.get("method_output_name")
    outputs = (output,) if isinstance(output, str) else tuple(output or ())
    token_embeddings_are_last_hidden_state = (
        first.module_output_name == "token_embeddings"
        and text.get("method") == "forward"
        and outputs == ("last_hidden_state",)
        and not getattr(first.auto_model.config, "output_hidden_states", False)
    )
    if not token_embeddings_are_last_hidden_state:
        raise ModelNotAvailable(
            f"embedding.backend {backend} exports the transformer's last hidden state as token embeddings; "
            f"this model's Transformer module makes {first.module_output_name} from {text}: set "
            "embedding.backend: torch"
        )
    allowed = tuple(getattr(st_modules, name) for name in FOLLOWING_MODULES)
    unsupported = [type(module).__name__ for module in modules[1:] if not isinstance(module, allowed)]
    if unsupported:
        raise ModelNotAvailable(
            f"embedding.backend {backend} runs {', '.join(FOLLOWING_MODULES)} modules after the transformer; "
            f"this model has {', '.join(unsupported)}: set embedding.backend: torch"
        )


@dataclass
class BackendEncoder:
    """Encodes like ``SentenceTransformer.encode`` with the transformer run by ``run``. Not
    thread-safe: one encoding thread, as the worker has."""

    model: SentenceTransformer
    run: TransformerRun
    input_names: tuple[str, ...]
    truncate_dim: int | None
    normalize: bool

    def encode(self, texts: Sequence[str]) -> FloatArray:
        import torch
        from sentence_transformers.util import truncate_embeddings

        if not texts:
            return np.zeros((0, self.model.get_embedding_dimension() or 0), dtype=np.float32)
        model = self.model
        prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
        with torch.inference_mode():
            features: dict[str, Any] = model.preprocess(list(texts), prompt=prompt)
            feeds = {name: features[name].numpy() for name in self.input_names}
            features["token_embeddings"] = torch.from_numpy(self.run(feeds))
            for module in list(model)[1:]:
                features = module(features)
            vectors = truncate_embeddings(features["sentence_embedding"], self.truncate_dim)
            if self.normalize:
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
            return np.asarray(vectors.numpy(), dtype=np.float32)


@dataclass(frozen=True)
class LoadedGraph:
    """The exported transformer, loaded into a runtime."""

    run: TransformerRun
    input_names: tuple[str, ...]
    """The tokenizer outputs the graph takes, as it declares them."""
    precision: str
    """What the runtime computes in."""


def onnx_runtime(graph: Path, threads: int) -> LoadedGraph:
    """An ONNX Runtime session on CPU with ``threads`` intra-op threads, in float32."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle threads block instead of spinning: spinning kept the CPUs from the worker's reader and
    # writer threads and torch's pool (pooling), and cost the worker 10-15 % (measured, 2 CPUs).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its graph-optimisation notices are not the user's
    session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def run(feeds: Mapping[str, npt.NDArray[np.int64]]) -> FloatArray:
        outputs = session.run([OUTPUT_NAME], dict(feeds))
        return np.asarray(outputs[0], dtype=np.float32)

    return LoadedGraph(run, tuple(str(value.name) for value in session.get_inputs()), "float32")


def openvino(graph: Path, threads: int) -> LoadedGraph:
    """An OpenVINO model compiled for the CPU with ``threads`` threads (latency hint: one stream),
    in the precision OpenVINO picks for this CPU (bfloat16 where it computes it natively, else
    float32)."""
    import openvino as ov

    compiled = ov.Core().compile_model(
        str(graph), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    )
    request = compiled.create_infer_request()
    output = compiled.output(OUTPUT_NAME)
    hint = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def run(feeds: Mapping[str, npt.NDArray[np.int64]]) -> FloatArray:
        results = request.infer(dict(feeds))
        return np.array(results[output], dtype=np.float32)  # a copy: the request reuses its buffers

    names = tuple(str(port.get_any_name()) for port in compiled.inputs)
    return LoadedGraph(run, names, OPENVINO_PRECISIONS.get(hint, hint))


RUNTIMES: dict[EmbeddingBackend, Callable[[Path, int], LoadedGraph]] = {
    EmbeddingBackend.ONNX: onnx_runtime,
    EmbeddingBackend.OPENVINO: openvino,
}
"""The backends that run an exported graph, and how each loads it."""


@dataclass
class OpenedBackend:
    encoder: BackendEncoder
    precision: str
    load_s: float
    """Seconds to load the graph into the runtime (an export, when there was one, is not in it)."""


def open_backend(
    model: SentenceTransformer,
    backend: EmbeddingBackend,
    graph: Path,
    *,
    threads: int,
    truncate_dim: int | None,
    normalize: bool,
) -> OpenedBackend:
    """The encoder for ``backend`` over the exported ``graph`` of ``model``'s transformer."""
    started = time.perf_counter()
    loaded = RUNTIMES[backend](graph, threads)
    load_s = time.perf_counter() - started
    encoder = BackendEncoder(model, loaded.run, loaded.input_names, truncate_dim, normalize)
    log.info("%s loaded %s in %.2f s (%s, %s threads)", backend, graph, load_s, loaded.precision, threads)
    return OpenedBackend(encoder, loaded.precision, load_s)
