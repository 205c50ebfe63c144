"""Continuous sync end to end: a writer inserts, updates (text and scalar columns) and deletes (soft
and hard) rows of the source while the backfill runs and after the cutover, and after each round
the collection the alias serves equals the source exactly: the same ids, the same fields, each
changed text found by searching for its new content, deleted ids gone, and unchanged texts not
embedded again (their stored vectors bit for bit the same). The sync worker is the plan's
Deployment run by the node agent; it and the operator are killed mid-stream; a second plan takes
the sync over at its cutover; on PostgreSQL, logical decoding finds the changes and the plan's
replication slot goes with the plan.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from pymilvus import MilvusClient
from tests.conftest import PostgresServer
from tests.e2e.migration_support import (
    QUICKSTART,
    QueryLoop,
    apply,
    condition,
    event_reasons,
    eventually,
    phase_is,
    plan_status,
    quickstart,
    run_operator,
)
from tests.polling import unique

from localcluster.cluster import Kubectl, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from vector_operator.api.vectorcollection import EmbeddingSpec
from vector_operator.worker.embedding_model import EmbeddingModel, load_embedding_model

pytestmark = [pytest.mark.cluster, pytest.mark.milvus]

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PLAN = "articles-backfill"


class Source:
    """The articles table, written as an application would: every write raises ``version`` (the
    change column); a soft delete sets ``deleted_at``."""

    def __init__(self, url: str, table: str) -> None:
        self.engine = sa.create_engine(url)
        self.table = table
        self.next_id = 10_000

    def _bump(self) -> str:
        return f"(SELECT coalesce(max(version), 0) + 1 FROM {self.table})"

    def insert(self, count: int) -> list[int]:
        ids = []
        with self.engine.begin() as connection:
            for _ in range(count):
                self.next_id += 1
                ids.append(self.next_id)
                connection.execute(
                    sa.text(
                        f"INSERT INTO {self.table} (id, title, body, category, version)"
                        f" VALUES (:id, :title, :body, 'inserted', {self._bump()})"
                    ),
                    {"id": self.next_id, "title": f"Inserted note {self.next_id}", "body": _fresh_text()},
                )
        return ids

    def update_text(self, ids: list[int]) -> None:
        with self.engine.begin() as connection:
            for key in ids:
                connection.execute(
                    sa.text(f"UPDATE {self.table} SET body = :body, version = {self._bump()} WHERE id = :id"),
                    {"id": key, "body": _fresh_text()},
                )

    def update_category(self, ids: list[int]) -> None:
        with self.engine.begin() as connection:
            for key in ids:
                connection.execute(
                    sa.text(
                        f"UPDATE {self.table} SET category = 'recategorised', version = {self._bump()}"
                        " WHERE id = :id"
                    ),
                    {"id": key},
                )

    def soft_delete(self, ids: list[int]) -> None:
        with self.engine.begin() as connection:
            for key in ids:
                connection.execute(
                    sa.text(
                        f"UPDATE {self.table} SET deleted_at = '2026-12-01 00:00:00',"
                        f" version = {self._bump()} WHERE id = :id"
                    ),
                    {"id": key},
                )

    def hard_delete(self, ids: list[int]) -> None:
        with self.engine.begin() as connection:
            for key in ids:
                connection.execute(sa.text(f"DELETE FROM {self.table} WHERE id = :id"), {"id": key})

    def live(self) -> dict[int, dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    f"SELECT id, title, body, category, version FROM {self.table} WHERE deleted_at IS NULL"
                )
            ).all()
        return {
            int(r.id): {"text": f"{r.title}\n{r.body}", "category": r.category, "version": r.version}
            for r in rows
        }


def _fresh_text() -> str:
    """A text no other row has: the search for it must find its own row first."""
    token = uuid.uuid4().hex[:8]
    return (
        f"Revision {token}: the on-call engineer rewrote this runbook entry about rotating TLS"
        f" certificates for ingress controller {token} after a renewal failed at night."
    )


def _sqlite_source(path: Path) -> Source:
    with sqlite3.connect(path) as connection:
        connection.executescript((QUICKSTART / "articles.sql").read_text())
        connection.executescript(
            "ALTER TABLE articles ADD COLUMN version INTEGER NOT NULL DEFAULT 0;"
            "ALTER TABLE articles ADD COLUMN deleted_at TEXT;"
            "UPDATE articles SET version = id;"
            "CREATE INDEX articles_version ON articles (version);"
        )
    return Source(f"sqlite:///{path}", "articles")


def _documents(
    url: str, alias: str, table: str, sync: dict[str, Any], name: str = PLAN
) -> list[dict[str, Any]]:
    """The quickstart's Secret, VectorCollection (with a version field) and a plan that syncs."""
    documents = quickstart(Path("/unused"), alias, batching={"recordsPerJob": 50, "maxConcurrentJobs": 1})
    for document in documents:
        if document["kind"] == "Secret":
            document["stringData"]["url"] = url
        elif document["kind"] == "VectorCollection":
            document["spec"]["fields"].append({"name": "version", "type": "INT64"})
        else:
            document["metadata"]["name"] = name
            document["spec"]["source"]["sql"]["table"] = table
            document["spec"]["source"]["sql"]["fields"] = {"category": "category", "version": "version"}
            document["spec"]["sync"] = sync
    return documents


@pytest.fixture(scope="module")
def model() -> EmbeddingModel:
    return load_embedding_model(EmbeddingSpec(model=MODEL))


def _stored(milvus: MilvusClient, alias: str) -> dict[int, dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    iterator = milvus.query_iterator(
        alias, batch_size=1000, filter="", output_fields=["id", "category", "version", "vector"]
    )
    while batch := iterator.next():
        rows.update({int(row["id"]): row for row in batch})
    iterator.close()
    return rows


def assert_exact(
    milvus: MilvusClient, alias: str, source: Source, model: EmbeddingModel, texts: list[int]
) -> None:
    """The collection the alias serves equals the source; each of ``texts`` (rows whose text
    changed) is found first by a search for its current text."""
    expected, stored = source.live(), _stored(milvus, alias)
    missing, extra = sorted(expected.keys() - stored.keys()), sorted(stored.keys() - expected.keys())
    assert not missing, f"missing {missing[:10]}"
    assert not extra, f"not in the source {extra[:10]}"
    wrong = [
        k
        for k, row in expected.items()
        if (stored[k]["category"], stored[k]["version"]) != (row["category"], row["version"])
    ]
    assert not wrong, [(k, expected[k]["version"], stored[k]["version"]) for k in wrong[:5]]
    live = [key for key in texts if key in expected]
    if live:
        vectors = model.encode([expected[key]["text"] for key in live])
        hits = milvus.search(
            alias, data=[v.tolist() for v in vectors], limit=1, search_params={"params": {"ef": 64}}
        )
        assert [int(h[0]["id"]) for h in hits] == live


def _synced_after(
    kubectl: Kubectl, moment: datetime.datetime, plan: str = PLAN, full_check: bool = False
) -> Any:
    """Waits until the plan's sync applied everything written before ``moment``."""

    def check() -> dict[str, Any] | None:
        sync = plan_status(kubectl, plan).get("sync") or {}
        through = sync.get("syncedThrough")
        if through is None or datetime.datetime.fromisoformat(through.replace("Z", "+00:00")) < moment:
            return None
        checked = sync.get("fullCheckAt")
        if full_check and (
            checked is None or datetime.datetime.fromisoformat(checked.replace("Z", "+00:00")) < moment
        ):
            return None
        return sync

    return eventually(f"{plan} synced past {moment:%H:%M:%S}", check, timeout=180)


def _after_now() -> datetime.datetime:
    """A moment after every write made so far (statuses keep whole seconds)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(seconds=1)


def _sync_worker_pids(namespace: str, plan: str) -> list[int]:
    """The host processes of the plan's sync worker (the node agent runs its pod as one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if (
            b"vector_operator.cli\x00sync" in command
            and f'"namespace":"{namespace}","name":"{plan}"'.encode() in environ
        ):
            found.append(int(entry.name))
    return found


def _worker_interval(kubectl: Kubectl) -> float | None:
    """The interval in the assignment of the sync worker's Deployment."""
    deployment = json.loads(kubectl("get", "deployment", f"{PLAN}-sync", "-o", "json").stdout)
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assignment = next(e["value"] for e in env if e["name"] == "VO_SYNC_ASSIGNMENT")
    return float(json.loads(assignment)["sync"]["intervalS"])


def test_a_continuous_plan_follows_its_table_through_kills_and_hands_over_to_the_next_plan(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    model: EmbeddingModel,
    tmp_path: Path,
) -> None:
    source = _sqlite_source(tmp_path / "articles.db")
    alias = unique("synced")
    sync = {
        "mode": "Continuous", "changeColumn": "version", "interval": "2s", "maxLag": "20s",
        "deletes": {"softDeleteColumn": "deleted_at", "fullCheckInterval": "10s"},
    }  # fmt: skip
    documents = _documents(f"sqlite:///{tmp_path / 'articles.db'}", alias, "articles", sync)
    operator = run_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator-1.log")
    texts: list[int] = []
    try:
        apply(kubectl, [d for d in documents if d["kind"] != "MigrationPlan"])
        kubectl("wait", "--for=condition=Ready", "vectorcollection/articles", "--timeout=90s")
        with QueryLoop(milvus_server.uri, alias) as queries:
            apply(kubectl, [d for d in documents if d["kind"] == "MigrationPlan"])
            eventually("the backfill runs", phase_is(kubectl, "Generating"))
            # Round 1, during the backfill: rows in batches already written and in batches to come.
            texts += source.insert(6)
            source.update_text([3, 120, 199])
            texts += [3, 120, 199]
            source.update_category([4, 121, 198])
            source.soft_delete([5, 150])
            source.hard_delete([6, 160])
            written = _after_now()
            assert plan_status(kubectl)["phase"] in ("Generating", "Validating")  # the backfill still runs
            status = eventually("the plan syncs after its cutover", phase_is(kubectl, "Syncing"))
            assert condition(status, "Complete")["reason"] == "Syncing"
            _synced_after(kubectl, written, full_check=True)
            assert milvus.describe_alias(alias)["collection_name"] == status["newPhysicalCollection"]
            assert_exact(milvus, alias, source, model, texts)
            assert condition(plan_status(kubectl), "InSync")["status"] == "True"

            # Round 2, after the cutover: only what changed is embedded.
            before = plan_status(kubectl)["sync"]
            scalar_only = [10, 20, 30, 40, 50]
            kept = {k: np.asarray(v["vector"]) for k, v in _stored(milvus, alias).items() if k in scalar_only}
            source.update_category(scalar_only)
            source.update_text([11, 21, 31, 41, 51])
            texts += [11, 21, 31, 41, 51]
            after = _synced_after(kubectl, _after_now())
            assert_exact(milvus, alias, source, model, texts)
            assert after["reembedded"] - before["reembedded"] == 5
            assert after["reused"] - before["reused"] == 5
            stored = _stored(milvus, alias)
            assert all(np.array_equal(kept[k], np.asarray(stored[k]["vector"])) for k in scalar_only)

            # Edited sync settings roll the worker once; it resumes from its watermark.
            kubectl(
                "patch", "migrationplan", PLAN, "--type=merge", "-p", '{"spec":{"sync":{"interval":"3s"}}}'
            )
            eventually(
                "the worker runs with the new interval", lambda: _worker_interval(kubectl) == 3.0 or None
            )
            assert "SyncWorkerUpdated" in event_reasons(kubectl, PLAN)

            # Round 3: the sync worker and the operator killed, writes made while both are down.
            pids = eventually("the new worker's process", lambda: _sync_worker_pids(namespace, PLAN) or None)
            assert pids, "the sync worker's process was not found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            operator.stop(signal.SIGKILL)
            texts += source.insert(4)
            source.update_text([70, 71])
            texts += [70, 71]
            source.soft_delete([72])
            source.hard_delete([73, 74])
            written = _after_now()
            operator = run_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator-2.log")
            _synced_after(kubectl, written, full_check=True)
            assert_exact(milvus, alias, source, model, texts)
            assert set(_sync_worker_pids(namespace, PLAN)).isdisjoint(pids)  # a new process took over

            # A second plan on the same collection fills its own, catches up, swings, takes over.
            second = _documents(
                f"sqlite:///{tmp_path / 'articles.db'}", alias, "articles", sync, "articles-resync"
            )
            apply(kubectl, [d for d in second if d["kind"] == "MigrationPlan"])
            eventually(
                "the second plan backfills",
                phase_is(kubectl, "Generating", "Validating", "CuttingOver", plan="articles-resync"),
            )
            texts += source.insert(3)
            source.update_text([90])
            texts.append(90)
            source.hard_delete([91])
            handed = eventually("the first plan hands over", phase_is(kubectl, "Succeeded"))
            assert condition(handed, "InSync")["reason"] == "HandedOver"
            new = eventually("the second plan syncs", phase_is(kubectl, "Syncing", plan="articles-resync"))
            assert milvus.describe_alias(alias)["collection_name"] == new["newPhysicalCollection"]
            eventually(
                "the first plan's worker is gone",
                lambda: (
                    "NotFound" in kubectl("get", "deployment", f"{PLAN}-sync", check=False).stderr or None
                ),
            )
            source.update_category([95])
            _synced_after(kubectl, _after_now(), plan="articles-resync", full_check=True)
            assert_exact(milvus, alias, source, model, texts)
        assert queries.failures == []

        kubectl("delete", "migrationplan", "articles-resync", "--wait=true", "--timeout=60s")
        eventually(
            "the deleted plan's worker is gone",
            lambda: (
                "NotFound" in kubectl("get", "deployment", "articles-resync-sync", check=False).stderr or None
            ),
        )
    finally:
        operator.shut_down(cluster, namespace)


def test_logical_decoding_on_postgresql_applies_exact_deletes_and_the_slot_goes_with_the_plan(
    cluster: RunningCluster,
    crds: None,
    kubectl: Kubectl,
    namespace: str,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    postgres: PostgresServer,
    model: EmbeddingModel,
    tmp_path: Path,
) -> None:
    table = f"articles_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres.url)
    statements = (QUICKSTART / "articles.sql").read_text().replace("articles", table)
    with engine.begin() as connection:
        for statement in statements.split(";\n"):
            if statement.strip() and not statement.strip().startswith(("BEGIN", "COMMIT")):
                connection.exec_driver_sql(statement)
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN version integer NOT NULL DEFAULT 0")
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN deleted_at timestamptz")
    source = Source(postgres.url, table)
    alias = unique("decoded")
    sync = {"mode": "Continuous", "capture": "LogicalDecoding", "interval": "2s", "maxLag": "20s"}
    documents = _documents(postgres.url, alias, table, sync)
    operator = run_operator(cluster, namespace, milvus_server.uri, tmp_path / "operator.log")
    texts: list[int] = []
    try:
        apply(kubectl, documents)
        eventually("the backfill runs", phase_is(kubectl, "Generating"))
        plan_uid = json.loads(kubectl("get", "migrationplan", PLAN, "-o", "json").stdout)["metadata"]["uid"]
        slot = "vo_" + plan_uid.replace("-", "")
        with engine.connect() as connection:
            slots = connection.exec_driver_sql("SELECT slot_name FROM pg_replication_slots").scalars().all()
        assert slot in slots
        texts += source.insert(5)
        source.update_text([3, 150])
        texts += [3, 150]
        source.update_category([4, 151])
        source.hard_delete([6, 7, 160])
        written = _after_now()
        eventually("the plan syncs after its cutover", phase_is(kubectl, "Syncing"))
        before = _synced_after(kubectl, written)
        assert_exact(milvus, alias, source, model, texts)

        source.hard_delete([8, 9])
        source.update_text([12])
        texts.append(12)
        after = _synced_after(kubectl, _after_now())
        assert_exact(milvus, alias, source, model, texts)
        assert after["deletesApplied"] - before["deletesApplied"] == 2  # exact deletes, no full check
        assert after["reembedded"] - before["reembedded"] == 1
        assert after["watermark"] != before["watermark"]  # the slot's position moved on

        kubectl("delete", "migrationplan", PLAN, "--wait=true", "--timeout=90s")
        with engine.connect() as connection:
            slots = connection.exec_driver_sql("SELECT slot_name FROM pg_replication_slots").scalars().all()
        assert slot not in slots
        assert "NotFound" in kubectl("get", "deployment", f"{PLAN}-sync", check=False).stderr or eventually(
            "the worker is gone",
            lambda: "NotFound" in kubectl("get", "deployment", f"{PLAN}-sync", check=False).stderr or None,
        )
    finally:
        operator.shut_down(cluster, namespace)
        engine.dispose()
