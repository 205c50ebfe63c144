"""Index changes and tuning on a filled VectorCollection, end to end: the operator, the API server,
Milvus Lite's server, kubectl; an application searching the alias all along.

- An index change is a re-index: a new physical collection with the new index, the stored rows
  copied (never re-embedded), validated, the alias swung; not one failed search, and an operator
  killed in the middle of the copy resumes it without a duplicate.
- Tuning: a Bayesian study of 20 trials on 20,000 real MiniLM vectors finishes (also across an
  operator restart), leaves no scratch collection, beats the seed's defaults side by side, and
  applies its result through a re-index.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bench.text_corpus import DIMENSION, minilm_vectors
from pymilvus import MilvusClient
from tests.conftest import start_operator
from tests.e2e.migration_support import QueryLoop, count, eventually, vector
from tests.polling import unique

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from vector_operator.collection.milvus_layout import IndexLayout

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]

ROWS = 6000
DIM = 64


def manifest(name: str, alias: str, dimension: int, **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "vectors.aios.dev/v1alpha1",
            "kind": "VectorCollection",
            "metadata": {"name": name},
            "spec": {
                "collectionName": alias,
                "dimension": dimension,
                "metricType": "COSINE",
                "fields": [
                    {"name": "title", "type": "VARCHAR", "maxLength": 64},
                    {"name": "year", "type": "INT64"},
                ],
                "embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2"},
                **spec,
            },
        }
    )


def status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(kubectl("get", "vectorcollection", name, "-o", "json").stdout)
    return got.get("status") or {}


def event_reasons(kubectl: Kubectl, name: str) -> list[str]:
    listed = json.loads(
        kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout
    )
    return [e["reason"] for e in listed["items"]]


def rows_of(milvus: MilvusClient, collection: str) -> dict[int, dict[str, Any]]:
    """Every row, by id (the copy must hold the very same ones: vectors bit for bit)."""
    found: dict[int, dict[str, Any]] = {}
    iterator = milvus.query_iterator(collection, batch_size=2000, filter="", output_fields=["*"])
    while page := iterator.next():
        for row in page:
            assert row["id"] not in found, f"id {row['id']} twice in {collection}"
            found[row["id"]] = row
    iterator.close()
    return found


def fill(milvus: MilvusClient, alias: str, vectors: np.ndarray[Any, Any]) -> None:
    for start in range(0, len(vectors), 1000):
        milvus.insert(
            alias,
            [
                {
                    "id": start + i,
                    "vector": vector.tolist(),
                    "title": None if (start + i) % 7 == 0 else f"row {start + i}",
                    "year": 1900 + (start + i) % 120,
                }
                for i, vector in enumerate(vectors[start : start + 1000])
            ],
        )
    milvus.flush(alias)


def index_of(milvus: MilvusClient, collection: str) -> dict[str, Any]:
    described: dict[str, Any] = milvus.describe_index(collection, milvus.list_indexes(collection)[0])
    return described


def test_an_index_change_under_load_loses_no_search_and_resumes_after_an_operator_kill(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    tmp_path: Path,
) -> None:
    alias = unique("reindexed")
    ivf = {"type": "IVF_SQ8", "params": {"nlist": 64}}
    # A small page and a rate cap make the copy last long enough to kill the operator within it.
    extra = ("--copy-page-size", "100")
    operator = start_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator-1.log", *extra)
    try:
        kubectl(
            "apply", "-f", "-",
            input=manifest("reindexed", alias, DIM, index=ivf, searchParams={"nprobe": 8}),
        )  # fmt: skip
        kubectl("wait", "--for=condition=Ready", "vectorcollection/reindexed", "--timeout=90s")
        vectors = np.random.default_rng(5).standard_normal((ROWS, DIM)).astype(np.float32)
        fill(milvus, alias, vectors)
        before = rows_of(milvus, f"{alias}__v1")
        assert len(before) == ROWS

        with QueryLoop(milvus_server.uri, alias, DIM, params={}) as queries:
            hnsw_index = {"type": "HNSW", "params": {"M": 16, "efConstruction": 100}}
            hnsw = [
                {"op": "replace", "path": "/spec/index", "value": hnsw_index},
                {"op": "replace", "path": "/spec/searchParams", "value": {"ef": 64}},
                {"op": "add", "path": "/spec/reindex", "value": {"maxVectorsPerSecond": 600}},
            ]
            kubectl("patch", "vectorcollection", "reindexed", "--type=json", "-p", json.dumps(hnsw))
            eventually(
                "the copy is under way",
                lambda: (
                    (r := status(kubectl, "reindexed").get("reindex") or {}).get("state") == "Copying"
                    and 0 < r.get("copied", 0) < ROWS
                ),
                timeout=120,
            )
            operator.stop(signal.SIGKILL)
            time.sleep(2)  # searches go on while no operator runs
            operator = start_operator(
                cluster, namespace, milvus_server.uri, tmp_path / "operator-2.log", *extra
            )
            done = eventually(
                "the re-index succeeds after the restart",
                lambda: (
                    (r := status(kubectl, "reindexed").get("reindex") or {}).get("state") == "Succeeded" and r
                ),
                timeout=240,
            )
            time.sleep(1)  # and a few searches after the swing
        assert queries.failures == []
        assert queries.queries > 50

        copy = f"{alias}__v2"
        assert done["resumes"] >= 1
        assert (done["copied"], done["total"]) == (ROWS, ROWS)
        assert done["vectorsPerSecond"] > 0
        assert done["recallAtK"] >= 0.9
        assert milvus.describe_alias(alias)["collection_name"] == copy
        assert index_of(milvus, copy)["index_type"] == "HNSW"
        assert index_of(milvus, f"{alias}__v1")["index_type"] == "IVF_SQ8"  # kept for the retention
        after = rows_of(milvus, copy)
        assert after == before  # same ids, vectors bit for bit, fields (NULLs too); no duplicate
        assert count(milvus, alias) == ROWS
        final = status(kubectl, "reindexed")
        assert (final["physicalCollection"], final["previousPhysicalCollection"]) == (copy, f"{alias}__v1")
        reasons = event_reasons(kubectl, "reindexed")
        assert {"ReindexStarted", "ReindexResumed", "Reindexed"} <= set(reasons)
        up_to_date = next(c for c in final["conditions"] if c["type"] == "UpToDate")
        assert (up_to_date["status"], up_to_date["reason"]) == ("True", "SpecApplied")
        exported = operator.metrics()  # the restarted operator made the swing
        swaps = f'collection="{alias}",namespace="{namespace}",reason="reindex"'
        assert f"vector_operator_alias_swaps_total{{{swaps}}} 1.0" in exported
        copied = f'measure="copied",name="reindexed",namespace="{namespace}"'
        assert f"vector_operator_reindex_progress{{{copied}}} {ROWS}.0" in exported
    finally:
        kubectl("delete", "vectorcollections", "--all", "--timeout=90s", check=False)
        operator.stop()


TUNED_ROWS = 20000


def test_a_tuning_study_of_20_trials_beats_the_seed_defaults_and_reindexes_to_its_result(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    tmp_path: Path,
) -> None:
    alias = unique("tuned")
    seed_defaults = {"type": "IVF_SQ8", "params": {"nlist": 1024}}  # the seed's section 1.2
    operator = start_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator-1.log")
    try:
        kubectl(
            "apply", "-f", "-",
            input=manifest("tuned", alias, DIMENSION, index=seed_defaults, searchParams={"nprobe": 16}),
        )  # fmt: skip
        kubectl("wait", "--for=condition=Ready", "vectorcollection/tuned", "--timeout=90s")
        fill(milvus, alias, minilm_vectors(TUNED_ROWS))
        # From the seed's IVF_SQ8 to HNSW: a build parameter change, applied by a re-index. The
        # ranges are narrowed so that each trial's build takes seconds on two cores.
        tuning = {
            "trials": 20,
            "sampleSize": 19800,
            "queries": 200,
            "indexTypes": ["HNSW"],
            "space": {"M": {"min": 8, "max": 32}, "efConstruction": {"min": 32, "max": 128}},
            "apply": "Reindex",
        }
        kubectl(
            "patch",
            "vectorcollection",
            "tuned",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"tuning": tuning}}),
        )
        eventually(
            "a third of the trials are done",
            lambda: ((status(kubectl, "tuned").get("tuning") or {}).get("trialsDone") or 0) >= 7,
            timeout=600,
        )
        operator.stop(signal.SIGKILL)  # mid-study: its scratch collections stay behind for now
        operator = start_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator-2.log")
        study = eventually(
            "the study finishes after the restart",
            lambda: (t := status(kubectl, "tuned").get("tuning") or {}).get("state") == "Succeeded" and t,
            timeout=900,
        )
        assert study["trialsDone"] == 20
        assert [trial["number"] for trial in study["trials"]] == list(range(20))
        assert study["trials"][0]["params"] == {"nlist": 1024}  # trial 0: what the collection served with
        assert (study["sampleSize"], study["queries"]) == (19800, 200)
        assert study["indexTypes"] == ["HNSW"]

        current, best = study["current"], study["best"]  # measured side by side at the end
        assert best["recallAtK"] >= current["recallAtK"]
        assert best["searchLatencyP95Ms"] <= current["searchLatencyP95Ms"] * 1.1 + 0.5
        assert best["recallAtK"] > current["recallAtK"] + 0.02, "the study should beat nlist 1024 / nprobe 16"
        assert study["decision"] == "Reindexing"
        seed = study["seedDefaults"]  # HNSW's (M 16, efConstruction 200, ef 64), measured as a trial
        assert (seed["indexType"], seed["params"], seed["searchParams"]) == (
            "HNSW",
            {"M": 16, "efConstruction": 200},
            {"ef": 64},
        )
        assert best["recallAtK"] >= seed["recallAtK"] - 0.005  # (best was rebuilt for the side by side)
        assert study["applied"]["params"] == best["params"]

        # The result is applied through a re-index, without re-embedding.
        done = eventually(
            "the tuned index is built by a re-index",
            lambda: (r := status(kubectl, "tuned").get("reindex") or {}).get("state") == "Succeeded" and r,
            timeout=300,
        )
        assert done["copied"] == TUNED_ROWS
        serving = milvus.describe_alias(alias)["collection_name"]
        assert serving == f"{alias}__v2"
        properties = milvus.describe_collection(serving)["properties"]
        assert best["indexType"] == "HNSW"
        assert 8 <= best["params"]["M"] <= 32
        tuned_index = IndexLayout("HNSW", "COSINE", dict(best["params"]))
        assert properties["vectors.aios.dev/index"] == tuned_index.fingerprint
        assert count(milvus, alias) == TUNED_ROWS

        names = milvus.list_collections()
        assert not [n for n in names if n.startswith(alias) and "__tune" in n], names  # no scratch left

        def tuned_condition() -> dict[str, Any] | None:  # written by the study once it sees the swing
            found = next(c for c in status(kubectl, "tuned")["conditions"] if c["type"] == "Tuned")
            return found if found["status"] == "True" else None

        tuned = eventually("the study records the re-index", tuned_condition, timeout=120)
        assert (tuned["status"], tuned["reason"]) == ("True", "Reindexed")
        assert "TuningApplied" in event_reasons(kubectl, "tuned")

        shown = vector(cluster, namespace, "tuning", "tuned")  # what an SRE reads
        assert "study Succeeded, 20 trial(s) on 19800 vectors, 200 held-out queries" in shown
        assert "IVF_SQ8 nlist=1024, nprobe=16" in next(
            line for line in shown.splitlines() if line.startswith("current")
        )
        assert len([line for line in shown.splitlines() if line.split(" ")[0].isdigit()]) == 20
        assert "tuned (re-index)" in vector(cluster, namespace, "history", "tuned")
    finally:
        kubectl("delete", "vectorcollections", "--all", "--timeout=90s", check=False)
        operator.stop()


def test_a_rollback_policy_stops_a_poor_copy_and_reverts_a_swing_that_serves_worse(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    tmp_path: Path,
) -> None:
    """One policy guards two collections' re-indexes: on "strict" a poor HNSW fails its
    validation (recallAtK below 0.999) and is dropped before it serves; on "watched" an exact FLAT
    index validates and serves, then a canary probe crosses the PostCutover latency trigger and the
    alias goes back to the collection the re-index replaced, with no failed search."""
    aliases = {name: unique(name) for name in ("strict", "watched")}
    operator = start_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator.log")
    ivf = {"type": "IVF_SQ8", "params": {"nlist": 16}}
    try:
        policy = {
            "apiVersion": "vectors.aios.dev/v1alpha1",
            "kind": "RollbackPolicy",
            "metadata": {"name": "reindex-guard"},
            "spec": {
                "collectionNames": ["strict", "watched"],
                "triggers": [
                    {"metric": "recallAtK", "below": 0.999, "phases": ["Validating"]},
                    {"metric": "searchLatencyP95Ms", "above": 0.001, "phases": ["PostCutover"]},
                ],
                "actions": ["RevertAlias", "Abort"],
                "postCutoverWindow": "10m",
            },
        }
        kubectl("apply", "-f", "-", input=json.dumps(policy))
        vectors = np.random.default_rng(9).standard_normal((2000, 32)).astype(np.float32)
        for name, alias in aliases.items():
            kubectl(
                "apply", "-f", "-", input=manifest(name, alias, 32, index=ivf, searchParams={"nprobe": 4})
            )
        for name, alias in aliases.items():
            kubectl("wait", "--for=condition=Ready", f"vectorcollection/{name}", "--timeout=90s")
            fill(milvus, alias, vectors)

        with QueryLoop(milvus_server.uri, aliases["watched"], 32, params={}) as queries:
            poor = {"type": "HNSW", "params": {"M": 4, "efConstruction": 8}}
            kubectl(
                "patch", "vectorcollection", "strict", "--type=json", "-p",
                json.dumps([{"op": "replace", "path": "/spec/index", "value": poor},
                            {"op": "replace", "path": "/spec/searchParams", "value": {"ef": 10}}]),
            )  # fmt: skip
            kubectl(
                "patch", "vectorcollection", "watched", "--type=json", "-p",
                json.dumps([{"op": "replace", "path": "/spec/index", "value": {"type": "FLAT"}},
                            {"op": "remove", "path": "/spec/searchParams"}]),
            )  # fmt: skip
            strict = eventually(
                "the poor copy is refused",
                lambda: (r := status(kubectl, "strict").get("reindex") or {}).get("state") == "Failed" and r,
                timeout=180,
            )
            watched = eventually(
                "the swing is reverted",
                lambda: (
                    (r := status(kubectl, "watched").get("reindex") or {}).get("state") == "RolledBack" and r
                ),
                timeout=180,
            )
            time.sleep(4)  # searches after the revert, and time for a re-index that must not start again
        assert queries.failures == []

        assert strict["message"].startswith(
            "PolicyTriggered: RollbackPolicy reindex-guard: recallAtK below 0.999"
        )
        assert milvus.describe_alias(aliases["strict"])["collection_name"] == f"{aliases['strict']}__v1"
        assert not milvus.has_collection(f"{aliases['strict']}__v2")  # dropped before it served
        assert status(kubectl, "strict")["physicalCollection"] == f"{aliases['strict']}__v1"

        assert watched["fired"].startswith("RollbackPolicy reindex-guard: searchLatencyP95Ms above 0.001")
        assert milvus.describe_alias(aliases["watched"])["collection_name"] == f"{aliases['watched']}__v1"
        assert milvus.has_collection(f"{aliases['watched']}__v2")  # the copy stays, for a look
        after = status(kubectl, "watched")
        assert after["reindex"]["state"] == "RolledBack"
        assert (after["physicalCollection"], after["previousPhysicalCollection"]) == (
            f"{aliases['watched']}__v1",
            f"{aliases['watched']}__v2",
        )
        up_to_date = next(c for c in after["conditions"] if c["type"] == "UpToDate")
        assert (up_to_date["status"], up_to_date["reason"]) == ("False", "ReindexRolledBack")
        assert "ReindexRolledBack" in event_reasons(kubectl, "watched")
        assert count(milvus, aliases["watched"]) == 2000

        recorded = json.loads(kubectl("get", "rollbackpolicy", "reindex-guard", "-o", "json").stdout)[
            "status"
        ]
        executions = {e["collection"]: e for e in recorded["executions"]}
        assert set(executions) == {"strict", "watched"}
        assert executions["strict"]["phase"] == "Validating"
        assert [(s["action"], s["result"]) for s in executions["strict"]["steps"]] == [
            ("RevertAlias", "Succeeded"),  # before the swing: the alias stays where it was
            ("Abort", "Succeeded"),
        ]
        assert executions["watched"]["phase"] == "PostCutover"
        assert [(s["action"], s["result"]) for s in executions["watched"]["steps"]] == [
            ("RevertAlias", "Succeeded"),
            ("Abort", "Skipped"),
        ]
        assert recorded["triggerCount"] == 2
        history = vector(cluster, namespace, "history")
        assert "watched (re-index)" in history
        assert "RollbackPolicy reindex-guard: searchLatencyP95Ms above 0.001" in history
        assert "strict (re-index)" in history
    finally:
        kubectl("delete", "vectorcollections,rollbackpolicies", "--all", "--timeout=90s", check=False)
        operator.stop()
