"""`make bench`: how fast the embedding worker is, against two references, on the same texts.

One process, one model, the same 5,000 deterministic 30-80-word texts:

1. encode: bare ``SentenceTransformer.encode(texts)`` (sentence-transformers' own batching: batch
   size 32, the whole list sorted by length) - the model's speed with nothing else to do;
2. naive: the loop most code starts with - fetch 32 rows from SQLite, encode them, insert them
   into Milvus, repeat - then flush;
3. worker[<backend>]: the embedding worker end to end, as a Job pod runs it (SQLite -> Milvus
   Lite, flush, quality sample of 100), with the model already loaded like the other two, once per
   ``embedding.backend`` of ``--backends`` (default torch,onnx,openvino).

Each is measured ``--rounds`` times (default 3, in rotating order, so that a load change on a shared
machine hits all alike); it prints the median throughputs, then the ratios on lines of their own
(``worker/encode: 0.93``, ``worker/naive: 1.41`` for torch, ``worker/encode[onnx]: 1.12`` for
every backend against the same bare torch encode), each the median of the ratios within a round.
Each backend's quality is its coherence against torch in float32 at full length, as the worker's
coherence check measures it: the mean and min cosine over the first ``--coherence-texts`` texts
(default 1,000) encoded in micro-batches of 64, and the worker's own sample of 100. The exported
backends start from an empty ONNX cache: their load times include the export (printed apart).
Milvus Lite runs as its own server on 127.0.0.1, as in the tests. ``--profile`` adds a cProfile of
the worker runs: where their time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as the worker command sets it

import numpy as np
from pymilvus import DataType, MilvusClient
from text_corpus import corpus

from localcluster.milvus_lite import MilvusLiteServer
from vector_operator.api.vectorcollection import EmbeddingBackend, EmbeddingSpec
from vector_operator.contract.assignment import WorkerAssignment
from vector_operator.worker.batch_run import BatchRun
from vector_operator.worker.embedding_model import EmbeddingModel, load_embedding_model
from vector_operator.worker.onnx_export import CACHE_ENV, INFO_FILE
from vector_operator.worker.quality import cosine_rows

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
NAIVE_BATCH = 32
URL_ENV = "BENCH_SOURCE_URL"
COHERENCE_BATCH = 64


def write_sqlite(path: Path, texts: list[str]) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        connection.executemany("INSERT INTO articles VALUES (?, ?)", enumerate(texts))


def create_collection(client: MilvusClient, name: str) -> None:
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIMENSION)
    index = client.prepare_index_params()
    index.add_index(
        field_name="vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 100}
    )
    client.create_collection(name, schema=schema, index_params=index)


def count(client: MilvusClient, name: str) -> int:
    return int(
        client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    )


def bare_encode(model: EmbeddingModel, texts: list[str]) -> float:
    started = time.perf_counter()
    model.model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - started


def naive_loop(model: EmbeddingModel, database: Path, client: MilvusClient, collection: str) -> float:
    started = time.perf_counter()
    with sqlite3.connect(database) as connection:
        cursor = connection.execute("SELECT id, body FROM articles ORDER BY id")
        while rows := cursor.fetchmany(NAIVE_BATCH):
            vectors = model.model.encode(
                [body for _, body in rows], normalize_embeddings=True, show_progress_bar=False
            )
            client.insert(
                collection,
                [{"id": key, "vector": vector} for (key, _), vector in zip(rows, vectors, strict=True)],
            )
    client.flush(collection)
    return time.perf_counter() - started


def worker_run(
    model: EmbeddingModel, database: Path, milvus_uri: str, collection: str, profile: cProfile.Profile | None
) -> tuple[float, Any]:
    assignment = WorkerAssignment.model_validate(
        {
            "batch": {"namespace": "bench", "plan": "throughput", "index": 0},
            "milvus": {"uri": milvus_uri},
            "collection": {
                "name": collection,
                "dimension": DIMENSION,
                "metricType": "COSINE",
                "searchParams": {"ef": 64},
            },
            "source": {
                "sql": {"urlEnv": URL_ENV, "table": "articles", "primaryKey": "id", "textColumns": ["body"]}
            },
            "model": {"model": MODEL, "backend": str(model.backend)},
        }
    )
    run = BatchRun(assignment, {URL_ENV: f"sqlite:///{database}"}, model=model)
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    result = run.execute()
    if profile is not None:
        profile.disable()
    return time.perf_counter() - started, result


def load_models(backends: list[EmbeddingBackend], cache: Path) -> dict[EmbeddingBackend, EmbeddingModel]:
    """Each backend's model, loaded as a Job loads it, the exported ones from an empty ONNX cache;
    prints the load times and the export's."""
    os.environ[CACHE_ENV] = str(cache)
    models, seconds = {}, {}
    for backend in dict.fromkeys([EmbeddingBackend.TORCH, *backends]):
        started = time.perf_counter()
        models[backend] = load_embedding_model(EmbeddingSpec(model=MODEL, backend=backend))
        seconds[backend] = time.perf_counter() - started
    exports = [json.loads(path.read_text())["exportSeconds"] for path in cache.glob(f"*/{INFO_FILE}")]
    print(
        "model load: "
        + ", ".join(
            f"{backend} {value:.2f} s ({models[backend].precision})" for backend, value in seconds.items()
        )
        + (f"; ONNX export {exports[0]:.1f} s (in the first exported backend's load)" if exports else "")
    )
    return models


def coherence(
    models: dict[EmbeddingBackend, EmbeddingModel], texts: list[str]
) -> dict[str, tuple[float, float]]:
    """Each backend's mean and min cosine to torch float32 at full length (the worker's reference),
    over ``texts`` encoded in micro-batches."""
    reference = models[EmbeddingBackend.TORCH].reference_encode(texts)
    found = {}
    for backend, model in models.items():
        vectors = np.concatenate(
            [
                model.encode(texts[start : start + COHERENCE_BATCH])
                for start in range(0, len(texts), COHERENCE_BATCH)
            ]
        )
        cosines = cosine_rows(vectors, reference)
        found[str(backend)] = (float(cosines.mean()), float(cosines.min()))
    return found


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def backend_list(text: str) -> list[EmbeddingBackend]:
    try:
        return list(dict.fromkeys(EmbeddingBackend(name.strip()) for name in text.split(",") if name.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a comma-separated list of {', '.join(EmbeddingBackend)}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=5000, help="number of texts (default 5000)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measure each this many times (default 3), report medians"
    )
    parser.add_argument(
        "--backends",
        type=backend_list,
        default=list(EmbeddingBackend),
        help="embedding.backend values to run the worker with, comma-separated (default torch,onnx,openvino)",
    )
    parser.add_argument(
        "--coherence-texts",
        type=int,
        default=1000,
        help="texts each backend's coherence against torch float32 is measured on (default 1000)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile the worker runs (cProfile, top functions)"
    )
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so that the Milvus Lite server stops too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import torch

    texts = corpus(args.texts)
    workers = [f"worker[{backend}]" for backend in args.backends]
    order = ["encode", "naive", *workers]
    with tempfile.TemporaryDirectory(prefix="vo-bench-") as scratch:
        database = Path(scratch) / "articles.db"
        write_sqlite(database, texts)
        server = MilvusLiteServer(data_dir=Path(scratch) / "milvus")
        server.start()
        client = MilvusClient(uri=server.uri)
        try:
            models = load_models(args.backends, Path(scratch) / "backends")
            model = models[EmbeddingBackend.TORCH]
            tokens = [len(ids) for ids in model.model.tokenizer(texts[:500])["input_ids"]]
            print(
                f"{len(texts)} texts of 30-80 words ({min(tokens)}-{max(tokens)} tokens, median "
                f"{int(np.median(tokens))}); {MODEL} on {model.device}, "
                f"torch threads {torch.get_num_threads()}"
            )
            print(f"before: {load()}")
            quality = coherence({b: models[b] for b in args.backends}, texts[: args.coherence_texts])
            model.model.encode(texts[:64], show_progress_bar=False)  # warm-up, for all alike
            for backend in args.backends:
                models[backend].encode(texts[:64])

            timings: dict[str, list[float]] = {name: [] for name in order}
            profile = cProfile.Profile() if args.profile else None
            results: dict[str, Any] = {}

            def measure(name: str, round_number: int) -> None:
                if name == "encode":
                    timings["encode"].append(bare_encode(model, texts))
                    return
                collection = f"bench_{name.replace('[', '_').rstrip(']')}_{round_number}"
                create_collection(client, collection)
                if name == "naive":
                    timings["naive"].append(naive_loop(model, database, client, collection))
                else:
                    backend = EmbeddingBackend(name.removeprefix("worker[").rstrip("]"))
                    seconds, results[name] = worker_run(
                        models[backend], database, server.uri, collection, profile
                    )
                    timings[name].append(seconds)
                assert count(client, collection) == len(texts), f"{name} lost records"
                client.drop_collection(collection)

            for round_number in range(args.rounds):  # rotate the order: drifting load hits all alike
                shift = round_number % len(order)
                for name in order[shift:] + order[:shift]:
                    measure(name, round_number)
                print(
                    f"round {round_number + 1}: "
                    + ", ".join(f"{name} {len(texts) / timings[name][-1]:.1f}/s" for name in order)
                    + f"; {load()}"
                )
            print(f"after:  {load()}")
        finally:
            client.close()
            server.stop()

    throughput = {name: len(texts) / statistics.median(values) for name, values in timings.items()}
    print(f"encode (SentenceTransformer.encode, batch size 32): {throughput['encode']:8.1f} texts/s")
    print(
        f"naive  (fetch {NAIVE_BATCH} rows, encode, insert, repeat):     {throughput['naive']:8.1f} texts/s"
    )
    for name in workers:
        print(f"{name + ' (SQLite -> Milvus Lite, end to end):':52}{throughput[name]:8.1f} texts/s")
    for name in workers:
        t, result = results[name].timings, results[name]
        sample = result.quality.coherence if result.quality else None
        print(
            f"{name} breakdown: total {t.total_ms} ms; encode {t.encode_ms} ms (p50 {t.batch_p50_ms} ms, "
            f"p95 {t.batch_p95_ms} ms per micro-batch), read {t.read_ms} ms and write {t.write_ms} ms "
            f"overlapped, model idle {t.encode_idle_ms} ms, flush {t.flush_ms} ms, quality {t.quality_ms} "
            "ms; "
            f"batch sizes {result.batch_sizes.min}-{result.batch_sizes.max} (median "
            f"{result.batch_sizes.median}); coherence of its sample {sample.mean if sample else None} "
            f"(min {sample.min if sample else None})"
        )
    if profile is not None:
        stats = pstats.Stats(profile, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)
    measured_on = min(len(texts), args.coherence_texts)
    for backend in args.backends:
        mean, lowest = quality[str(backend)]
        print(
            f"coherence[{backend}]: {mean:.5f} (min {lowest:.5f}) over {measured_on} texts, against torch "
            f"float32 at full length ({models[backend].precision})"
        )
    # Ratios within a round compare runs minutes apart, not a quiet round with a loaded one.
    rounds = range(args.rounds)

    def over(numerator: str, denominator: str) -> float:
        return statistics.median(timings[numerator][r] / timings[denominator][r] for r in rounds)

    if EmbeddingBackend.TORCH in args.backends:
        print(f"worker/encode: {over('encode', 'worker[torch]'):.2f}")
        print(f"worker/naive: {over('naive', 'worker[torch]'):.2f}")
    for name in workers:
        print(f"{name.replace('worker', 'worker/encode')}: {over('encode', name):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
