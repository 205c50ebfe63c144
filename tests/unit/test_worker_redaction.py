"""Secrets the worker reads never show up in its logs or its result."""

from __future__ import annotations

import io
import logging

from vector_operator.contract.assignment import WorkerAssignment
from vector_operator.worker.redaction import Redactor, secret_values

ASSIGNMENT = WorkerAssignment.model_validate(
    {
        "batch": {"plan": "p", "index": 0},
        "milvus": {"uri": "http://milvus:19530", "tokenEnv": "MILVUS_TOKEN"},
        "collection": {"name": "c", "dimension": 4},
        "source": {"sql": {"urlEnv": "SOURCE_URL", "table": "t", "primaryKey": "id", "textColumns": ["x"]}},
        "model": {"model": "m"},
    }
)
ENVIRON = {
    "SOURCE_URL": "postgresql+psycopg://app:s3cr%40t-pw@db:5432/app",
    "MILVUS_TOKEN": "root:Milvus-Pass",
    "UNRELATED": "not-a-secret",
}


def test_masks_the_named_secrets_and_their_password_parts() -> None:
    redact = Redactor(secret_values(ASSIGNMENT, ENVIRON))
    text = (
        "could not connect to postgresql+psycopg://app:s3cr%40t-pw@db:5432/app; "
        "auth failed for password s3cr@t-pw; token root:Milvus-Pass; bare Milvus-Pass; not-a-secret"
    )
    redacted = redact(text)
    for secret in ("s3cr%40t-pw", "s3cr@t-pw", "Milvus-Pass"):
        assert secret not in redacted
    assert "not-a-secret" in redacted
    assert redacted.startswith("could not connect to ***; auth failed for password ***")


def test_masks_log_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test_worker_redaction")
    logger.handlers[:] = [logging.StreamHandler(stream)]
    logger.propagate = False
    Redactor(secret_values(ASSIGNMENT, ENVIRON)).install(logger)
    logger.error("url is %s", ENVIRON["SOURCE_URL"])
    try:
        raise RuntimeError(f"token {ENVIRON['MILVUS_TOKEN']} refused")
    except RuntimeError:
        logger.exception("failed")
    output = stream.getvalue()
    assert "s3cr" not in output
    assert "Milvus-Pass" not in output
    assert "RuntimeError: token *** refused" in output


def test_unset_variables_are_no_secrets() -> None:
    assert secret_values(ASSIGNMENT, {}) == []
