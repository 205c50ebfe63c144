"""Helpers for the embedding worker's integration tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pymilvus import MilvusClient
from tests.conftest import PostgresServer  # noqa: F401 - re-exported for the worker tests

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384

# -- article texts -----------------------------------------------------------------------------

_SUBJECTS = (  # noqa: SIM905  (a readable word list)
    "the river|a small village|the old bridge|our research team|the city council|a young engineer|"
    "the orchestra|the museum|a local farmer|the new library|the mountain railway|"
    "a software company|the school board|the football club|a marine biologist|the harbour|"
    "the night train|a famous painter|the bakery on the corner|the weather service"
).split("|")
_VERBS = (  # noqa: SIM905  (a readable word list)
    "opened described repaired studied announced celebrated measured painted rebuilt visited "
    "reported designed protected explored recorded improved tested shared questioned supported"
).split()
_OBJECTS = (  # noqa: SIM905  (a readable word list)
    "a long forgotten manuscript|the winter festival|an unusual migration of birds|"
    "the flooded meadows|a faster compiler|the annual budget|a collection of ancient coins|"
    "the coastal wetlands|a bright new comet|the cracked foundation|an open source database|"
    "the spring harvest|a series of concerts|the glacier's retreat|a quiet reading room|"
    "the broken water main|a rare orchid|the election results|a solar powered ferry|"
    "the history of the town"
).split("|")
_TAILS = (  # noqa: SIM905  (a readable word list)
    "after months of careful planning|despite the heavy rain|with help from volunteers|"
    "before the end of the season|to the surprise of many residents|"
    "using surprisingly simple tools|while tourists watched from the shore|"
    "for the first time in decades|in cooperation with the university|"
    "although the budget was tight|as the sun went down over the hills|"
    "because the old system kept failing"
).split("|")


def article_texts(count: int, seed: int = 7) -> list[str]:
    """``count`` deterministic English texts of 30 to 80 words (about 35 to 90 MiniLM tokens)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        target, words = rng.randint(30, 80), []
        while True:
            sentence = (
                f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
                f"{rng.choice(_TAILS)}."
            ).split()
            if len(words) + len(sentence) > target and len(words) >= 30:
                break
            words += sentence
        texts.append(" ".join(words[:target]))
    return texts


# -- Milvus and the worker --------------------------------------------------------------------


def entity_count(client: MilvusClient, collection: str, filter_expression: str = "") -> int:
    """The exact number of live entities (count(*), which excludes deleted and overwritten rows)."""
    rows = client.query(
        collection, filter=filter_expression, output_fields=["count(*)"], consistency_level="Strong"
    )
    return int(rows[0]["count(*)"])


def sql_assignment(
    *,
    milvus_uri: str,
    collection: str,
    table: str,
    url_env: str = "SOURCE_DATABASE_URL",
    text_columns: list[str] | None = None,
    text_template: str | None = None,
    fields: dict[str, str] | None = None,
    scalar_fields: list[dict[str, Any]] | None = None,
    key_range: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """An assignment as the MigrationPlan controller writes it, for an SQL source."""
    sql: dict[str, Any] = {"urlEnv": url_env, "table": table, "primaryKey": "id", "fields": fields or {}}
    if text_template is not None:
        sql["textTemplate"] = text_template
    else:
        sql["textColumns"] = text_columns or ["title", "body"]
    document: dict[str, Any] = {
        "version": 2,
        "batch": {"namespace": "tests", "plan": "worker-it", "index": 0},
        "milvus": {"uri": milvus_uri, "timeoutS": 30},
        "collection": {
            "name": collection,
            "dimension": DIMENSION,
            "metricType": "COSINE",
            "scalarFields": scalar_fields or [],
            "searchParams": {"ef": 64},
        },
        "source": {"sql": sql},
        "keyRange": key_range or {},
        "model": {"model": MODEL},
        "quality": {"sampleSize": 100},
    }
    for section, value in sections.items():
        document[section] = value if not isinstance(value, dict) else {**document.get(section, {}), **value}
    return document


@dataclass
class WorkerRun:
    exit_code: int
    result: dict[str, Any]
