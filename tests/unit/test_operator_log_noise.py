"""What the operator keeps out of its log and Events: the routine successes Kopf would post as
Events, and the listing that merely raced a concurrent drop (listed again, not an outage)."""

from __future__ import annotations

import logging

import pytest
from pymilvus.exceptions import MilvusException

from vector_operator.milvus.collections import listing_raced_a_drop
from vector_operator.operator_runtime import _NoRoutineSuccessEvents


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    "message",
    ["Handler 'reconcile' succeeded.", "Timer 'check' succeeded.", "Handler 'cleanup' succeeded."],
)
def test_routine_successes_are_no_events(message: str) -> None:
    assert not _NoRoutineSuccessEvents().filter(_record(message))


@pytest.mark.parametrize(
    "message",
    [
        "Handler 'reconcile' failed temporarily: Milvus unavailable",
        "Timer 'check' failed with an exception. Will retry.",
        "bench_1: CreateCollection(name='bench_1__v1')",
        "dropped a collection that succeeded.",
    ],
)
def test_everything_else_still_posts(message: str) -> None:
    assert _NoRoutineSuccessEvents().filter(_record(message))


def test_a_listing_that_raced_a_drop_is_listed_again() -> None:
    assert listing_raced_a_drop(MilvusException(code=1, message="collection 'a__v1' does not exist"))


@pytest.mark.parametrize(
    "message",
    [
        "database 'other' does not exist",
        "Fail connecting to server on 127.0.0.1:19530",
        "collection 'a__v1' is being dropped; retry later",
    ],
)
def test_other_listing_failures_are_not_retried(message: str) -> None:
    assert not listing_raced_a_drop(MilvusException(code=1, message=message))
