"""`vector-operator worker` from a real PostgreSQL (Debian's, on 127.0.0.1) into Milvus Lite."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from pymilvus import MilvusClient
from worker_support import PostgresServer, article_texts, entity_count, sql_assignment

from localcluster.milvus_lite import MilvusLiteServer

pytestmark = pytest.mark.milvus

ARTICLES = 200


@pytest.fixture(scope="module")
def articles_table(postgres: PostgresServer) -> str:
    engine = sa.create_engine(postgres.url)
    texts = article_texts(ARTICLES, seed=11)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS public.pg_articles"))
        connection.execute(
            sa.text(
                "CREATE TABLE public.pg_articles (id bigint PRIMARY KEY, title text, body text, lang text)"
            )
        )
        connection.execute(
            sa.text("INSERT INTO public.pg_articles VALUES (:id, :title, :body, 'en')"),
            [{"id": 10 * key, "title": f"Story {key}", "body": text} for key, text in enumerate(texts)]
            + [
                {"id": 5001, "title": None, "body": None},  # nullText
                {"id": 5002, "title": " ", "body": ""},  # emptyText: the template's ". " is no content
            ],
        )
    engine.dispose()
    return "public.pg_articles"


def assignment(
    milvus_server: MilvusLiteServer, collection: str, table: str, **changes: Any
) -> dict[str, Any]:
    return sql_assignment(
        milvus_uri=milvus_server.uri,
        collection=collection,
        table=table,
        text_template="{title}. {body}",
        fields={"lang": "lang"},
        scalar_fields=[{"name": "lang", "type": "VARCHAR", "maxLength": 8}],
        **changes,
    )


def test_a_postgres_table_lands_in_milvus_and_a_rerun_does_not_duplicate(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    postgres: PostgresServer,
    articles_table: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    collection = new_collection(varchar_fields={"lang": 8})
    document = assignment(milvus_server, collection, articles_table)
    first = run_worker(document, SOURCE_DATABASE_URL=postgres.url)
    second = run_worker(document, SOURCE_DATABASE_URL=postgres.url)

    for run in (first, second):
        assert run.exit_code == 0, run.result
        assert run.result["records"] == {
            "read": ARTICLES + 2,
            "embedded": ARTICLES,
            "upserted": ARTICLES,
            "skipped": {"emptyText": 1, "nullText": 1},
            "truncated": 0,
        }
        assert run.result["quality"]["coherence"]["min"] >= 0.99
        assert run.result["quality"]["retrievability"] == 1.0
    assert entity_count(milvus_client, collection) == ARTICLES
    assert entity_count(milvus_client, collection, "id >= 0 and id <= 1990") == ARTICLES
    captured = capfd.readouterr()
    assert postgres.password not in captured.out + captured.err


def test_a_key_range_reads_only_its_rows(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    postgres: PostgresServer,
    articles_table: str,
) -> None:
    collection = new_collection(varchar_fields={"lang": 8})
    document = assignment(milvus_server, collection, articles_table, key_range={"start": 500, "end": 1000})
    run = run_worker(document, SOURCE_DATABASE_URL=postgres.url)
    assert run.exit_code == 0, run.result
    assert run.result["records"]["read"] == 50
    assert entity_count(milvus_client, collection) == 50
    assert entity_count(milvus_client, collection, "id >= 500 and id < 1000") == 50


def test_an_unreachable_database_fails_for_a_retry_without_leaking_the_password(
    milvus_server: MilvusLiteServer,
    new_collection: Any,
    run_worker: Any,
    postgres: PostgresServer,
    articles_table: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    collection = new_collection(varchar_fields={"lang": 8})
    unreachable = postgres.url.replace(f":{postgres.port}/", ":1/")
    run = run_worker(assignment(milvus_server, collection, articles_table), SOURCE_DATABASE_URL=unreachable)
    assert run.exit_code == 1
    assert (run.result["status"], run.result["reason"]) == ("Failed", "SourceUnavailable")
    assert "127.0.0.1" in run.result["message"]
    captured = capfd.readouterr()
    assert postgres.password not in run.result["message"] + captured.out + captured.err
