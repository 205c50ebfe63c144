"""Conditions are merged the Kubernetes way: `lastTransitionTime` moves only when the status flips,
every other field follows the latest update, and the list keeps its order."""

from __future__ import annotations

import datetime

from vector_operator.status_conditions import (
    ConditionUpdate,
    condition_status,
    merged_conditions,
    timestamp,
)

T0 = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)
T2 = T0 + datetime.timedelta(minutes=9)


def by_type(conditions: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(c["type"]): c for c in conditions}


def test_update_of_states_holds_as_true_or_false() -> None:
    assert ConditionUpdate.of("Ready", True, "Serving").status == "True"
    assert ConditionUpdate.of("Ready", False, "Loading", "x").status == "False"


def test_timestamps_are_utc_rfc3339_seconds() -> None:
    assert timestamp(T0) == "2026-03-01T12:00:00Z"
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert (
        timestamp(datetime.datetime(2026, 3, 1, 14, 0, 0, 999999, tzinfo=plus_two)) == "2026-03-01T12:00:00Z"
    )


def test_first_conditions_get_now_and_the_generation() -> None:
    merged = merged_conditions(
        None,
        [
            ConditionUpdate.of("Provisioned", True, "CollectionCreated", "a__v1"),
            ConditionUpdate.of("Ready", False, "Loading"),
        ],
        generation=3,
        now=T0,
    )
    assert merged == [
        {
            "type": "Provisioned",
            "status": "True",
            "reason": "CollectionCreated",
            "message": "a__v1",
            "lastTransitionTime": "2026-03-01T12:00:00Z",
            "observedGeneration": 3,
        },
        {
            "type": "Ready",
            "status": "False",
            "reason": "Loading",
            "message": "",
            "lastTransitionTime": "2026-03-01T12:00:00Z",
            "observedGeneration": 3,
        },
    ]


def test_transition_time_moves_only_when_the_status_flips() -> None:
    first = merged_conditions(None, [ConditionUpdate.of("Ready", False, "Provisioning", "creating")], 1, T0)

    # Same status, new reason and message: the reason and message follow, the time stays.
    second = merged_conditions(first, [ConditionUpdate.of("Ready", False, "Loading", "loading a__v1")], 2, T1)
    assert second[0]["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert (second[0]["reason"], second[0]["message"], second[0]["observedGeneration"]) == (
        "Loading",
        "loading a__v1",
        2,
    )

    # The status flips: the time moves.
    third = merged_conditions(second, [ConditionUpdate.of("Ready", True, "Serving")], 2, T2)
    assert third[0]["status"] == "True"
    assert third[0]["lastTransitionTime"] == "2026-03-01T12:09:00Z"

    # Unknown is a status of its own: True -> Unknown is a flip too.
    fourth = merged_conditions(third, [ConditionUpdate("Ready", "Unknown", "MilvusUnavailable")], 2, T2)
    assert fourth[0]["status"] == "Unknown"
    assert fourth[0]["lastTransitionTime"] == "2026-03-01T12:09:00Z"
    fifth = merged_conditions(
        fourth,
        [ConditionUpdate("Ready", "Unknown", "MilvusUnavailable")],
        2,
        T2 + datetime.timedelta(hours=1),
    )
    assert fifth[0]["lastTransitionTime"] == "2026-03-01T12:09:00Z"


def test_existing_conditions_keep_their_place_and_new_ones_follow() -> None:
    current = merged_conditions(
        None,
        [
            ConditionUpdate.of("Ready", False, "Provisioning"),
            ConditionUpdate.of("Provisioned", False, "CollectionMissing"),
        ],
        1,
        T0,
    )
    merged = merged_conditions(
        current,
        [
            ConditionUpdate.of("Indexed", True, "IndexBuilt"),
            ConditionUpdate.of("Provisioned", True, "CollectionCreated"),
            ConditionUpdate.of("Ready", True, "Serving"),
        ],
        1,
        T1,
    )
    assert [c["type"] for c in merged] == ["Ready", "Provisioned", "Indexed"]
    assert all(c["status"] == "True" for c in merged)


def test_conditions_not_updated_are_kept_untouched() -> None:
    """Another writer's condition (e.g. one a MigrationPlan sets) survives a partial update."""
    theirs = {
        "type": "MigrationActive",
        "status": "True",
        "reason": "Generating",
        "message": "plan nodes-backfill",
        "lastTransitionTime": "2026-02-01T00:00:00Z",
        "observedGeneration": 7,
    }
    merged = merged_conditions([theirs], [ConditionUpdate.of("Ready", True, "Serving")], 8, T0)
    assert merged[0] == theirs
    assert by_type(merged)["Ready"]["observedGeneration"] == 8


def test_generation_is_left_out_when_unknown() -> None:
    merged = merged_conditions(None, [ConditionUpdate.of("Ready", True, "Serving")], None, T0)
    assert "observedGeneration" not in merged[0]


def test_the_input_list_is_not_modified() -> None:
    current = merged_conditions(None, [ConditionUpdate.of("Ready", False, "Loading")], 1, T0)
    snapshot = [dict(c) for c in current]
    merged_conditions(current, [ConditionUpdate.of("Ready", True, "Serving")], 2, T1)
    assert current == snapshot


def test_messages_are_cut_to_what_the_api_server_accepts() -> None:
    merged = merged_conditions(None, [ConditionUpdate.of("Ready", False, "Loading", "x" * 40000)], 1, T0)
    assert len(str(merged[0]["message"])) == 32768


def test_condition_status_reads_one_type() -> None:
    conditions = merged_conditions(
        None,
        [ConditionUpdate.of("Ready", True, "Serving"), ConditionUpdate.of("Degraded", False, "Healthy")],
        1,
        T0,
    )
    assert condition_status(conditions, "Ready") == "True"
    assert condition_status(conditions, "Degraded") == "False"
    assert condition_status(conditions, "UpToDate") is None
    assert condition_status(None, "Ready") is None
