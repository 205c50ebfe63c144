"""`vector-operator worker` as a Job pod runs it: a separate process, the assignment in its
environment, the result in the termination-message file and on stdout, a meaningful exit code."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient
from worker_support import article_texts, entity_count, sql_assignment

from localcluster.milvus_lite import MilvusLiteServer

pytestmark = pytest.mark.milvus

VECTOR_OPERATOR = str(Path(sys.executable).with_name("vector-operator"))


def run_command(
    assignment: dict[str, Any], tmp_path: Path, **environment: str
) -> tuple[int, str, dict[str, Any]]:
    termination = tmp_path / "termination-log"
    environ = {
        **os.environ,
        **environment,
        "VO_ASSIGNMENT": json.dumps(assignment),
        "TERMINATION_MESSAGE_PATH": str(termination),
    }
    process = subprocess.run(
        [VECTOR_OPERATOR, "worker"], env=environ, capture_output=True, text=True, timeout=300, check=False
    )
    return process.returncode, process.stdout, json.loads(termination.read_text())


@pytest.fixture
def small_database(tmp_path: Path) -> str:
    path = tmp_path / "small.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT)")
        connection.executemany(
            "INSERT INTO articles VALUES (?, ?, ?)",
            [(key, f"Article {key}", text) for key, text in enumerate(article_texts(40, seed=5))],
        )
    return f"sqlite:///{path}"


def test_the_command_succeeds_and_reports_through_the_termination_message(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    small_database: str,
    tmp_path: Path,
) -> None:
    collection = new_collection()
    document = sql_assignment(milvus_uri=milvus_server.uri, collection=collection, table="articles")
    exit_code, stdout, result = run_command(document, tmp_path, SOURCE_DATABASE_URL=small_database)
    assert exit_code == 0, stdout
    assert json.loads(stdout.strip().splitlines()[-1]) == result
    assert (result["status"], result["records"]["upserted"]) == ("Succeeded", 40)
    assert entity_count(milvus_client, collection) == 40


def test_a_model_that_is_not_available_offline_is_a_permanent_failure(
    milvus_server: MilvusLiteServer, new_collection: Any, small_database: str, tmp_path: Path
) -> None:
    collection = new_collection()
    document = sql_assignment(
        milvus_uri=milvus_server.uri,
        collection=collection,
        table="articles",
        model={"model": "BAAI/bge-small-en-v1.5"},
    )
    exit_code, _, result = run_command(
        document, tmp_path, SOURCE_DATABASE_URL=small_database, HF_HUB_CACHE=str(tmp_path / "empty-cache")
    )
    assert exit_code == 2
    assert (result["status"], result["reason"]) == ("Failed", "ModelNotAvailable")
    assert "model 'BAAI/bge-small-en-v1.5' is not available offline" in result["message"]


def test_an_invalid_assignment_is_a_permanent_failure(tmp_path: Path) -> None:
    exit_code, _, result = run_command({"version": 2, "batch": {"plan": "p", "index": 0}}, tmp_path)
    assert exit_code == 2
    assert (result["status"], result["reason"]) == ("Failed", "InvalidAssignment")
    assert "milvus: Field required" in result["message"]


def test_sigterm_stops_the_worker_with_a_result_that_says_so(
    milvus_server: MilvusLiteServer, new_collection: Any, tmp_path: Path
) -> None:
    path = tmp_path / "many.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT)")
        texts = article_texts(200, seed=9)
        connection.executemany(
            "INSERT INTO articles VALUES (?, ?, ?)",
            [(key, "Article", texts[key % 200]) for key in range(20_000)],
        )
    collection = new_collection()
    termination = tmp_path / "termination-log"
    environ = {
        **os.environ,
        "SOURCE_DATABASE_URL": f"sqlite:///{path}",
        "VO_ASSIGNMENT": json.dumps(
            sql_assignment(milvus_uri=milvus_server.uri, collection=collection, table="articles")
        ),
        "TERMINATION_MESSAGE_PATH": str(termination),
    }
    process = subprocess.Popen(
        [VECTOR_OPERATOR, "worker"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait until it reads and encodes
        if "reading table articles" in line:
            break
    process.send_signal(signal.SIGTERM)
    exit_code = process.wait(timeout=120)
    result = json.loads(termination.read_text())
    assert exit_code == 143
    assert (result["status"], result["reason"]) == ("Failed", "Terminated")
    assert result["records"]["read"] < 20_000


def test_sigterm_writes_the_result_within_the_grace_period_even_over_huge_rows(
    milvus_server: MilvusLiteServer, new_collection: Any, tmp_path: Path
) -> None:
    """Rows of 120,000 characters (a view makes them as they are read) and a SIGTERM while the
    worker is busy with them: the result is written at once, well inside a pod's 30 s grace period,
    whatever the reading or encoding threads are in the middle of; the texts are cut by the database
    to what the model's window can read, so no stage ever holds a huge page or a huge call."""
    path = tmp_path / "huge.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE base (id INTEGER PRIMARY KEY, title TEXT)")
        connection.executemany(
            "INSERT INTO base VALUES (?, ?)", [(key, f"Article {key}") for key in range(6000)]
        )
        connection.execute(
            "CREATE VIEW articles AS SELECT id, title,"
            " CAST(replace(hex(zeroblob(20000)), '00', 'token ') AS TEXT) AS body FROM base"
        )
    assignment = sql_assignment(milvus_uri=milvus_server.uri, collection=new_collection(), table="articles")
    termination = tmp_path / "termination-log"
    environ = {
        **os.environ,
        "SOURCE_DATABASE_URL": f"sqlite:///{path}",
        "VO_ASSIGNMENT": json.dumps(assignment),
        "TERMINATION_MESSAGE_PATH": str(termination),
    }
    process = subprocess.Popen(
        [VECTOR_OPERATOR, "worker"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "reading table articles" in line:
            break
    time.sleep(6)  # reading, tokenizing and encoding are all under way
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    exit_code = process.wait(timeout=300)
    took = time.monotonic() - signalled
    result = json.loads(termination.read_text())
    assert exit_code == 143
    assert result["reason"] == "Terminated"
    assert result["records"]["upserted"] < 6000
    assert took < 15, f"the result came {took:.1f} s after SIGTERM: past a pod's grace period"
