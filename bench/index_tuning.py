"""`make bench-tune`: a re-index's copy beside embedding, and a tuning study beside the seed's
defaults, on real all-MiniLM-L6-v2 vectors of 20,000 texts in a Milvus Lite server.

1. copy/encode: the rate at which a re-index copies stored vectors (the operator's own
   ``copy_rows``: key-ordered pages, upserted into a collection with the new index) beside the rate
   at which the same model embeds the same texts (bare ``SentenceTransformer.encode``), medians
   over ``--rounds``; a re-index never re-embeds, and this says what that saves.
2. tuning: the operator's own study (``TrialRunner``: Optuna's TPE over ``--trials`` trials, each
   a candidate index built on a scratch collection of the sample and measured on held-out stored
   vectors), then the best and the seed's defaults (IVF_SQ8 nlist 1024 / nprobe 16; HNSW M 16 /
   efConstruction 200 / ef 64) measured side by side on the same queries: recall@10, search p50
   and p95, and the study's wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from text_corpus import DIMENSION, MODEL, corpus, minilm_vectors

from localcluster.milvus_lite import MilvusLiteServer
from vector_operator.api.collection_tuning import TuningSpec, TuningState, TuningStatus
from vector_operator.api.vectorcollection import EmbeddingSpec, VectorCollectionSpec
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.collection.ownership import Owner
from vector_operator.collection.physical_names import scratch_names
from vector_operator.controller.tuning_trials import TrialRunner
from vector_operator.milvus.collection_copy import copy_rows
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusClients, MilvusEndpoint
from vector_operator.milvus.tuning_bench import TuningBench
from vector_operator.tuning.search_space import SEED_DEFAULTS, Candidate, SearchSpace
from vector_operator.worker.embedding_model import load_embedding_model

ALIAS = "bench_tune"
OWNER = Owner("bench", "bench-tune", "bench-uid")


def collection_spec(index_type: str) -> VectorCollectionSpec:
    params, search = SEED_DEFAULTS[index_type]
    return VectorCollectionSpec.model_validate(
        {
            "collectionName": ALIAS,
            "dimension": DIMENSION,
            "metricType": "COSINE",
            "index": {"type": index_type, "params": dict(params)},
            "searchParams": dict(search),
            "embedding": {"model": MODEL},
        }
    )


def fill(milvus: MilvusCollections, rows: int, index_type: str) -> str:
    physical = f"{ALIAS}__v1"
    milvus.create(physical, layout_of(collection_spec(index_type)), OWNER)
    vectors = minilm_vectors(rows)
    with milvus.session("fill") as client:
        for start in range(0, rows, 2000):
            page = vectors[start : start + 2000]
            client.insert(physical, [{"id": start + i, "vector": v.tolist()} for i, v in enumerate(page)])
        client.flush(physical)
        client.create_alias(physical, ALIAS)
    return physical


def copy_rate(milvus: MilvusCollections, source: str, rows: int, rounds: int) -> float:
    """Median vectors per second of the re-index copy into an HNSW collection."""
    target_layout = layout_of(collection_spec("HNSW"))
    rates = []
    for round_number in range(rounds):
        target = f"{ALIAS}__v{round_number + 2}"
        milvus.create(target, target_layout, OWNER)
        started = time.perf_counter()
        copy_rows(milvus, source, target, None, 1000, None, lambda _: None)
        rates.append(rows / (time.perf_counter() - started))
        assert milvus.count(target) == rows, "the copy lost rows"
        milvus.drop(target, OWNER)
    return statistics.median(rates)


def encode_rate(texts: list[str], rounds: int) -> float:
    model = load_embedding_model(EmbeddingSpec(model=MODEL))
    model.model.encode(texts[:64], normalize_embeddings=True)  # warm-up
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        model.model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates)


def tune(milvus: MilvusCollections, index_type: str, trials: int, queries: int) -> None:
    params, search = SEED_DEFAULTS[index_type]
    defaults = Candidate(index_type, dict(params), dict(search))
    tuning = TuningSpec.model_validate({"trials": trials, "queries": queries})
    bench = TuningBench(milvus, ALIAS, OWNER, "COSINE", tuning.objective.k)
    started = time.perf_counter()
    try:
        sample = bench.read_sample(ALIAS, tuning.sample_size, tuning.queries)
        scratch = scratch_names(ALIAS)[0]
        bench.fill(scratch, sample)
        support = milvus.index_support()
        ignores = support.ignores(index_type) if support is not None else ()
        ignored = {index_type: ignores} if ignores else {}
        space = SearchSpace(
            [index_type], None, tuning.objective.k, DIMENSION, sample.size, ignored=ignored, current=defaults
        )
        if ignored:
            names = ", ".join(ignored[index_type])
            print(f"  Milvus {support.server} ignores {names} for {index_type}: not searched")
        status = TuningStatus(state=TuningState.RUNNING, fingerprint="bench")
        runner = TrialRunner(tuning, defaults, space, sample, bench, scratch)

        def progress(now: TuningStatus) -> None:
            print(f"  {now.message or 'trial 1: the seed defaults'}", file=sys.stderr)

        runner.run(status, progress, lambda: False)
        outcome = runner.conclude(status)
        wall = time.perf_counter() - started
    finally:
        bench.drop_scratch()
    assert status.current is not None
    best = status.best or status.current
    held_out = sample.queries.shape[0]
    print(f"\ntuning {index_type}: {trials} trials on {sample.size} vectors, {held_out} held-out queries")
    print(f"  {'':<52} {'recall@10':>9} {'p50 ms':>8} {'p95 ms':>8}")
    for label, figures in (
        ("seed defaults " + defaults.describe(), status.current),
        ("tuned " + Candidate(best.index_type, best.params, best.search_params).describe(), best),
    ):
        print(
            f"  {label:<52} {figures.recall_at_k:>9.4f} {figures.search_latency_p50_ms:>8.2f}"
            f" {figures.search_latency_p95_ms:>8.2f}"
        )
    print(f"  decision: {outcome.decision.value}: {outcome.message}")
    print(f"tuning wall time: {wall:.1f} s")
    current = status.current
    print(f"tuned/defaults recall@10: {(best.recall_at_k or 0) / (current.recall_at_k or 1):.3f}")
    print(
        f"tuned/defaults p95: {(best.search_latency_p95_ms or 0) / (current.search_latency_p95_ms or 1):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--encode-texts", type=int, default=1000, help="texts embedded per round for the encode rate"
    )
    parser.add_argument(
        "--index-type", action="append", choices=sorted(SEED_DEFAULTS), help="repeatable; default IVF_SQ8"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    vectors_ready = minilm_vectors(args.rows)
    took = time.perf_counter() - started
    print(f"{args.rows} MiniLM vectors ready ({took:.1f} s; cached after the first run)")
    del vectors_ready
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as scratch:
        server = MilvusLiteServer(data_dir=Path(scratch) / "milvus")
        server.start()
        clients = MilvusClients()
        try:
            milvus = MilvusCollections(clients, MilvusEndpoint(server.uri), lambda *_: None)
            types = args.index_type or ["IVF_SQ8", "HNSW"]
            source = fill(milvus, args.rows, types[0])
            copying = copy_rate(milvus, source, args.rows, args.rounds)
            encoding = encode_rate(corpus(args.encode_texts), args.rounds)
            print(
                f"re-index copy: {copying:.0f} vectors/s; embedding the same texts: {encoding:.1f} vectors/s"
            )
            print(f"copy/encode: {copying / encoding:.1f}")
            for index_type in types:
                tune(milvus, index_type, args.trials, args.queries)
        finally:
            clients.close()
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
