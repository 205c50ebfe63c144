"""When the sync worker finds changes how, when a pass includes a full check, and how long a
failing worker waits before it tries again."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from vector_operator.contract.sync import SyncSettings, SyncState
from vector_operator.worker.sync_schedule import ChangeFinding, backoff_s, change_finding, full_check_due

NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


def settings(**changes: Any) -> SyncSettings:
    return SyncSettings.model_validate({"continuous": True, "intervalS": 10, **changes})


def state(**changes: Any) -> SyncState:
    return SyncState(plan_uid="uid", **changes)


@pytest.mark.parametrize(
    ("changes", "finding"),
    [
        ({"capture": "LogicalDecoding", "slot": "vo_abc"}, ChangeFinding.SLOT),
        ({"changeColumn": "updated_at"}, ChangeFinding.CHANGE_COLUMN),
        ({}, ChangeFinding.FULL_CHECK),
        ({"capture": "LogicalDecoding"}, ChangeFinding.FULL_CHECK),  # no slot: nothing else to follow
    ],
)
def test_how_changes_are_found(changes: dict[str, Any], finding: ChangeFinding) -> None:
    assert change_finding(settings(**changes)) is finding


def test_without_a_change_column_or_a_slot_every_pass_is_a_full_check() -> None:
    assert full_check_due(settings(), state(full_check_at=NOW), NOW)


def test_with_a_change_column_a_full_check_runs_only_every_interval() -> None:
    polling = settings(changeColumn="updated_at")
    assert not full_check_due(polling, state(), NOW)
    every_hour = settings(changeColumn="updated_at", fullCheckIntervalS=3600)
    assert full_check_due(every_hour, state(), NOW)  # none ran yet
    assert not full_check_due(every_hour, state(full_check_at=NOW - datetime.timedelta(minutes=59)), NOW)
    assert full_check_due(every_hour, state(full_check_at=NOW - datetime.timedelta(minutes=60)), NOW)


def test_the_back_off_doubles_from_one_second_up_to_a_minute_or_six_intervals() -> None:
    assert [backoff_s(failures, 30) for failures in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [backoff_s(failures, 2) for failures in range(1, 6)] == [1, 2, 4, 8, 12]
    assert backoff_s(1000, 10) == 60
