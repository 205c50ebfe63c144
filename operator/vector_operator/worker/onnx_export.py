"""The model's transformer as an ONNX file: exported once per model and toolchain, then cached.

ONNX Runtime and OpenVINO (``embedding.backend: onnx | openvino``) run an ONNX graph.
sentence-transformers' own ONNX support goes through optimum-onnx, which requires transformers < 5
while sentence-transformers 6.2 requires transformers >= 5; torch's own exporter (``torch.onnx``,
the dynamo exporter, which needs onnx and onnxscript) needs neither. Only the transformer is
exported (token ids in, token embeddings out, batch and sequence length dynamic): the tokenizer,
the pooling and the normalisation stay the model's own, so they cannot drift.

The cache (``$VO_BACKEND_CACHE``, default ``~/.cache/vector-operator/backends``) holds one directory
per export key::

    <key>/model.onnx         the graph
          model.onnx.data    its weights (external data: no 2 GB limit)
          export.json        what was exported (the model's name and path), by what, in how long

The key hashes the model's path, the content of its config and weights, the opset and the
exporter's versions: a changed model or toolchain exports again instead of reusing a stale graph,
and two names of one model (``all-MiniLM-L6-v2``, ``sentence-transformers/all-MiniLM-L6-v2``)
share one export. An export is written into a temporary directory beside the others and renamed
into place: two Jobs exporting at once never read a half-written file (the second rename fails,
and that Job uses the first one's directory). A cache that cannot be written falls back to a
temporary directory (removed at a normal interpreter exit; a Job's pod, which ends with
``os._exit``, discards it with its filesystem) and says so: every Job then exports again.

``python -m vector_operator.worker.onnx_export MODEL...`` exports ahead of time: a step of the
worker image's build, with ``VO_BACKEND_CACHE`` set to a directory in the image, so that no Job
pays for the export.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vector_operator.worker.model_loading import ModelNotAvailable

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

CACHE_ENV = "VO_BACKEND_CACHE"
"""The environment variable naming the cache directory of exported models."""
DEFAULT_CACHE = "~/.cache/vector-operator/backends"
OPSET = 18
EXPORT_FORMAT = 1
"""Bump when what is exported changes (inputs, outputs, wrapper): older cached graphs are ignored."""
GRAPH_FILE = "model.onnx"
INFO_FILE = "export.json"
OUTPUT_NAME = "token_embeddings"
TRANSFORMER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
"""The tokenizer outputs the exported graph may take, in this order."""
WEIGHT_SUFFIXES = (".safetensors", ".bin")
CONFIG_FILES = ("config.json",)
_DIGEST_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportKey:
    """Everything an exported graph depends on; equal keys mean the cached graph is the one an
    export would write now."""

    model_path: str
    content_digest: str
    """sha256 over the transformer's config and weight files."""
    opset: int
    exporter: str
    """The exporter's versions and :data:`EXPORT_FORMAT`."""

    @property
    def directory_name(self) -> str:
        """The cache directory of this key: 24 hex digits of its hash."""
        canonical = json.dumps([self.model_path, self.content_digest, self.opset, self.exporter])
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


@dataclass
class ExportedModel:
    """An ONNX graph ready to load."""

    path: Path
    """The graph file (its weights beside it)."""
    export_s: float | None
    """Seconds this process spent exporting; None when a cached graph was reused."""
    notes: list[str] = field(default_factory=list)
    """What the result should tell the user (a cache that could not be written)."""


def transformer_dir(model_dir: Path) -> Path:
    """Where the model's first module (its transformer) keeps its config and weights: the path
    modules.json gives it (the model's root for most models, ``0_Transformer`` for older ones)."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        first = min(modules, key=lambda module: int(module.get("idx", 0)))
        return model_dir / str(first.get("path") or "")
    except (OSError, ValueError, TypeError, AttributeError):  # no modules.json: a plain transformers model
        return model_dir


def transformer_files(transformer_dir: Path) -> list[Path]:
    """The files an exported graph is made of: the config and the weights transformers loads
    (safetensors when there are any, else the PyTorch .bin files), in a stable order."""
    files = sorted(path for path in transformer_dir.iterdir() if path.is_file())
    weights = [path for path in files if path.suffix == ".safetensors"] or [
        path for path in files if path.suffix == ".bin"
    ]
    configs = [path for path in files if path.name in CONFIG_FILES]
    return configs + weights


def content_digest(files: Sequence[Path]) -> str:
    """sha256 over the names and contents of ``files`` (about 0.1 s for MiniLM's 90 MB)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as stream:
            while chunk := stream.read(_DIGEST_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def exporter_version() -> str:
    import torch

    onnxscript = importlib.metadata.version("onnxscript")
    return f"torch {torch.__version__}, onnxscript {onnxscript}, format {EXPORT_FORMAT}"


def export_key(transformer_dir: Path) -> ExportKey:
    files = transformer_files(transformer_dir)
    if not any(path.suffix in WEIGHT_SUFFIXES for path in files):
        raise ModelNotAvailable(
            f"{transformer_dir} holds no weights (.safetensors or .bin) to export to ONNX: set "
            "embedding.backend: torch"
        )
    return ExportKey(str(transformer_dir.resolve()), content_digest(files), OPSET, exporter_version())


def cache_root(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def writable_cache(root: Path) -> tuple[Path, list[str]]:
    """``root`` when this process can create files in it, else a fresh temporary directory and a
    note that says so."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".probe-", dir=root)
        os.rmdir(probe)
        return root, []
    except OSError as error:
        fallback = Path(tempfile.mkdtemp(prefix="vo-backends-"))
        atexit.register(shutil.rmtree, fallback, ignore_errors=True)
        reason = error.strerror or type(error).__name__
        return fallback, [
            f"the backend cache {root} is not writable ({reason}): the model was exported to ONNX in a "
            f"temporary directory, and every Job exports it again; set {CACHE_ENV} to a writable "
            "directory (a volume, or a path baked into the worker image) to export once"
        ]


def exported_model(
    model: SentenceTransformer, name: str, transformer_dir: Path, environ: Mapping[str, str] | None = None
) -> ExportedModel:
    """The cached ONNX graph of ``model``'s transformer (model ``name``, loaded from
    ``transformer_dir``), exported first when there is none; raises :class:`ModelNotAvailable` when
    it cannot be exported."""
    key = export_key(transformer_dir)
    cached = cache_root(os.environ if environ is None else environ) / key.directory_name / GRAPH_FILE
    if cached.is_file():  # reading is enough: a cache baked into a read-only image serves as well
        log.info("reusing the ONNX export of %s in %s", name, cached.parent)
        return ExportedModel(cached, None)
    root, notes = writable_cache(cached.parent.parent)
    target = root / key.directory_name
    staging = Path(tempfile.mkdtemp(prefix=f".{key.directory_name}-", dir=root))
    try:
        started = time.perf_counter()
        export_transformer(model, staging / GRAPH_FILE)
        seconds = time.perf_counter() - started
        info = {"model": name, "path": key.model_path, "contentSha256": key.content_digest,
                "opset": key.opset, "exporter": key.exporter, "exportSeconds": round(seconds, 2)}  # fmt: skip
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp's 0700 would hide a cache baked into an image from its user
        try:
            os.rename(staging, target)
        except OSError:  # another process renamed its export into place first: use that one
            if not (target / GRAPH_FILE).is_file():
                raise
            log.info("another process exported %s at the same time; using its copy", transformer_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported the transformer of %s to ONNX in %.1f s: %s", transformer_dir, seconds, target)
    return ExportedModel(target / GRAPH_FILE, seconds, notes)


def hugging_face_model(model: SentenceTransformer) -> torch.nn.Module:
    """The transformers model inside ``model``'s first module (its Transformer)."""
    from sentence_transformers.base.modules import Transformer

    first = model[0]
    if not isinstance(first, Transformer):
        raise ModelNotAvailable(
            f"the model starts with {type(first).__name__}, not a transformer: set embedding.backend: torch"
        )
    transformer: torch.nn.Module = first.auto_model
    return transformer


def graph_inputs(model: SentenceTransformer, features: Mapping[str, Any]) -> list[str]:
    """The tokenizer outputs the transformer's forward takes, in :data:`TRANSFORMER_INPUTS` order;
    raises :class:`ModelNotAvailable` when it takes another tensor input too."""
    import inspect

    import torch

    accepted = set(inspect.signature(hugging_face_model(model).forward).parameters)
    tensors = {name for name, value in features.items() if isinstance(value, torch.Tensor)}
    unknown = sorted((tensors & accepted) - set(TRANSFORMER_INPUTS))
    if unknown:
        raise ModelNotAvailable(
            f"the transformer takes {', '.join(unknown)} besides token ids, which the ONNX export does "
            "not pass: set embedding.backend: torch"
        )
    return [name for name in TRANSFORMER_INPUTS if name in tensors and name in accepted]


def token_embeddings_module(transformer: torch.nn.Module) -> torch.nn.Module:
    """The module that is exported: the transformer's forward on token ids, its last hidden state
    out (what sentence-transformers' Transformer module hands to pooling)."""
    import torch

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor | None = None,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            given = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
            inputs = {name: value for name, value in given.items() if value is not None}
            hidden: torch.Tensor = self.transformer(
                input_ids=input_ids, **inputs, return_dict=True
            ).last_hidden_state
            return hidden

    return TokenEmbeddings().eval()


EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")
"""Whose INFO lines (every graph rewrite) and warnings (torchvision ops skipped, axis names merged)
are the exporter's business, not the Job log's."""


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keeps the exporter's chatter out of the Job's log while it runs; errors still log and raise."""
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_transformer(model: SentenceTransformer, target: Path) -> None:
    """Writes ``model``'s transformer to ``target`` (and its weights beside it) with dynamic batch
    and sequence axes; raises :class:`ModelNotAvailable` when the exporter cannot."""
    import torch

    sample = model.preprocess(["an example text to trace the model with", "and a second, longer one to pad"])
    names = graph_inputs(model, sample)
    if "input_ids" not in names:
        raise ModelNotAvailable("the model's tokenizer gives no input_ids: set embedding.backend: torch")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    try:
        with _quiet_exporter(), torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                token_embeddings_module(hugging_face_model(model)),
                (),
                str(target),
                kwargs={name: sample[name].to("cpu") for name in names},
                input_names=list(names),
                output_names=[OUTPUT_NAME],
                opset_version=OPSET,
                dynamo=True,
                external_data=True,
                dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
                verbose=False,
            )
    except Exception as error:  # the exporter raises many kinds; the user's fix is the same
        first_line = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise ModelNotAvailable(
            f"the model's transformer cannot be exported to ONNX ({type(error).__name__}: {first_line}): "
            "set embedding.backend: torch"
        ) from error


def main(argv: Sequence[str] | None = None) -> int:
    """Exports models ahead of time into ``$VO_BACKEND_CACHE``; prints where each graph is."""
    import argparse

    from sentence_transformers import SentenceTransformer

    from vector_operator.api.vectorcollection import EmbeddingBackend
    from vector_operator.worker.model_loading import resolve_model
    from vector_operator.worker.onnx_encoder import check_supported

    parser = argparse.ArgumentParser(
        prog="python -m vector_operator.worker.onnx_export",
        description="Export models' transformers to ONNX for embedding.backend onnx and openvino, into "
        f"${CACHE_ENV} (default {DEFAULT_CACHE}): run it where the worker image is built, with {CACHE_ENV} "
        "set in the image too, and no Job exports.",
    )
    parser.add_argument("models", nargs="+", help="model names or paths, as embedding.model gives them")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in args.models:
        path = resolve_model(name)
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        check_supported(model, EmbeddingBackend.ONNX)
        exported = exported_model(model, name, transformer_dir(path))
        if exported.notes:
            log.error("%s", exported.notes[0])
            return 1
        print(exported.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
