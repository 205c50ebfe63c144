"""`make chaos`'s pure parts: the seeded fault schedule, the awkward table and what it must yield,
and the invariants, which must flag every kind of damage (a check that cannot fail would let a
broken operator pass the chaos run)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from chaos.invariants import RunFacts, tally_query_failures, violations
from chaos.schedule import FaultKind, draw_schedule, rollback_runs
from chaos.workload import Expected, write_source


def test_the_schedule_replays_from_its_seed_and_draws_every_kind_evenly() -> None:
    assert draw_schedule(7, 3, 4) == draw_schedule(7, 3, 4)
    assert draw_schedule(7, 3, 4) != draw_schedule(8, 3, 4)
    drawn = [draw for run in draw_schedule(7, 2, 5) for draw in run]
    assert Counter(draw.kind for draw in drawn) == Counter(dict.fromkeys(FaultKind, 2))
    assert all(3 <= d.delay_s <= 20 and 5 <= d.outage_s <= 30 for d in drawn)
    assert [len(run) for run in draw_schedule(1, 4, 3)] == [3, 3, 3, 3]


def test_every_other_run_expects_a_rollback() -> None:
    runs = rollback_runs(5, 4)
    assert runs in ([False, True, False, True], [True, False, True, False])


def test_the_awkward_table_holds_what_its_expectation_says(tmp_path: Path) -> None:
    expected = write_source(tmp_path / "s.db", 1000, seed=3)
    with sqlite3.connect(tmp_path / "s.db") as connection:
        rows = connection.execute("SELECT id, title, body, category FROM articles").fetchall()
    assert len(rows) == expected.rows == 1000
    keys = [row[0] for row in rows if row[0] is not None]
    assert len(keys) == len(set(keys)) == 999
    assert min(keys) < 0 < max(keys)
    assert max(keys) == 2**63 - 1
    assert expected.embedded_keys <= set(keys)
    assert sum(expected.skipped.values()) + len(expected.embedded_keys) == 1000
    assert set(expected.skipped) == {"nullKey", "nullText", "emptyText", "nullField", "fieldTooLong"}
    by_key = {row[0]: row for row in rows}
    null_text = [k for k in keys if by_key[k][1] is None and by_key[k][2] is None]
    assert len(null_text) == expected.skipped["nullText"]
    assert any(len(row[2] or "") > 20_000 for row in rows)  # longer than the model reads
    assert any(not (row[1] or "").isascii() for row in rows)
    assert write_source(tmp_path / "again.db", 1000, seed=3).embedded_keys == expected.embedded_keys


def _expected() -> Expected:
    expected = Expected(rows=6, embedded_keys={1, 2, 3, 4})
    expected.skipped.update({"nullKey": 1, "nullText": 1})
    return expected


def _facts(**changes: Any) -> RunFacts:
    facts = RunFacts(
        rollback_expected=False,
        phase="Succeeded",
        plan_status={
            "newPhysicalCollection": "a__v2",
            "previousPhysicalCollection": "a__v1",
            "progress": {
                "recordsRead": 6,
                "recordsDone": 4,
                "skippedByReason": {"nullKey": 1, "nullText": 1},
            },
        },
        policy_status={},
        alias_target="a__v2",
        physical_collections=["a__v1", "a__v2"],
        served_ids=[1, 2, 3, 4],
        query_failures=[10.0, 12.0],
        milvus_down=[(9.0, 11.0)],
    )
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def test_an_exact_run_violates_nothing() -> None:
    assert violations(_facts(), _expected()) == []


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"served_ids": [1, 2, 3, 4, 4]}, "served more than once"),
        ({"served_ids": [1, 2, 3]}, "lacks 1 rows"),
        ({"physical_collections": ["a__v1", "a__v2", "a__v3"]}, "orphan physical collections"),
        ({"alias_target": "a__v1"}, "not the plan's a__v2"),
        ({"alias_target": None}, "serves no collection"),
        ({"phase": "Failed"}, "ended Failed"),
        ({"query_failures": [10.0, 30.0]}, "1 searches on the alias failed while Milvus was up"),
        ({"leftover_pods": ["articles-backfill-3-x"]}, "left after the plan ended"),
        (
            {"policy_status": {"triggerCount": 1, "executions": [{"plan": "articles-backfill"}]}},
            "recorded 1 executions",
        ),
    ],
)
def test_each_kind_of_damage_is_a_violation(changes: dict[str, Any], words: str) -> None:
    found = violations(_facts(**changes), _expected())
    assert any(words in violation for violation in found), found


def test_counts_that_do_not_add_up_are_violations() -> None:
    status = {
        "newPhysicalCollection": "a__v2",
        "progress": {"recordsRead": 6, "recordsDone": 3, "skippedByReason": {"nullKey": 1, "nullText": 1}},
    }
    found = violations(_facts(plan_status=status, physical_collections=["a__v2"]), _expected())
    assert any("rows read 6 != vectors 3 + skipped 2" in v for v in found), found
    assert any("recordsDone 3 != 4" in v for v in found), found


def test_a_rollback_must_be_recorded_exactly_once() -> None:
    once = {"triggerCount": 1, "executions": [{"plan": "articles-backfill"}]}
    rolled_back = _facts(
        rollback_expected=True,
        phase="RolledBack",
        policy_status=once,
        alias_target="a__v1",
        physical_collections=["a__v1"],
        served_ids=[],
    )
    assert violations(rolled_back, _expected()) == []
    twice = {"triggerCount": 2, "executions": [{"plan": "articles-backfill"}] * 2}
    rolled_back.policy_status = twice
    found = violations(rolled_back, _expected())
    assert any("recorded 2 executions" in v for v in found)
    assert any("triggerCount is 2" in v for v in found)


def test_query_failures_count_apart_while_milvus_is_down_and_just_after() -> None:
    tally = tally_query_failures([1.0, 10.0, 15.9, 16.1], [(9.0, 11.0)])
    assert (tally.during_milvus_outage, tally.otherwise) == (2, 2)


def test_a_rollback_run_ends_in_rows_without_text(tmp_path: Path) -> None:
    plain = write_source(tmp_path / "plain.db", 1000, seed=4)
    failing = write_source(tmp_path / "failing.db", 1000, seed=4, failing_tail=True)
    with sqlite3.connect(tmp_path / "failing.db") as connection:
        last = connection.execute(
            "SELECT title, body FROM articles WHERE id IS NOT NULL ORDER BY id DESC LIMIT 99"
        ).fetchall()
    assert last == [(None, None)] * 99
    assert failing.skipped["nullText"] >= plain.skipped["nullText"] + 99 - 15  # some were already
    assert sum(failing.skipped.values()) + len(failing.embedded_keys) == 1000
