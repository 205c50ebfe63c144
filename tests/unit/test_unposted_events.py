"""Events of a round whose status write lost a race are posted with the next round that writes."""

from __future__ import annotations

from vector_operator.migration.effects import Event
from vector_operator.migration.unposted_events import carried_over

PLANNED = Event("Planned", "200 records in 1 batches")
CREATED = Event("CollectionCreated", "created articles__v2")
GENERATING = Event("Generating", "filling articles__v2")


def test_a_written_round_posts_the_events_an_earlier_round_lost_first() -> None:
    assert carried_over([PLANNED, CREATED], [GENERATING]) == [PLANNED, CREATED, GENERATING]


def test_an_event_decided_again_is_posted_once_in_the_later_words() -> None:
    again = Event("Planned", "200 records in 1 batches of up to 200")
    assert carried_over([PLANNED, CREATED], [again]) == [CREATED, again]


def test_nothing_lost_means_only_the_rounds_own_events() -> None:
    assert carried_over([], [GENERATING]) == [GENERATING]
    assert carried_over([], []) == []
