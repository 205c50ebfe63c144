"""Events of a step whose effects were applied but whose status write lost a race.

A round of a plan's step applies its effects (the batch plan stored, the new collection created)
and then writes the status with the resourceVersion it read. When something else changed the plan
in between (Kopf's own annotations, a user's edit), the write is refused with a conflict and the
round looks again from what is stored now. Its Events must not be lost with it: the next round,
seeing the effect already done, does not decide them again ("Planned" follows a scan of the source
that is not repeated; "CollectionCreated" follows a creation that now exists). So they are carried
to the next round that writes, and posted with its own; an Event that round decides again (same
reason) is posted once, in the words of the later round."""

from __future__ import annotations

from vector_operator.migration.effects import Event


def carried_over(unposted: list[Event], decided: list[Event]) -> list[Event]:
    """What to post once a round's status is written: the Events of earlier rounds that lost the
    race (in their order) unless this round decided the same reason again, then this round's."""
    again = {event.reason for event in decided}
    return [event for event in unposted if event.reason not in again] + decided
