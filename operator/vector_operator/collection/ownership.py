"""Which VectorCollection owns a physical collection (and so the alias in front of it).

Two VectorCollections in different namespaces may declare the same collectionName on one Milvus:
both would call `<name>__v1` theirs, and deleting one would drop the other's data. So every
physical collection the operator creates records its owner (namespace, name, uid) in a
collection property, and no VectorCollection changes or drops what another one owns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

OWNER_PROPERTY = "vectors.aios.dev/owner"


@dataclass(frozen=True)
class Owner:
    namespace: str
    name: str
    uid: str

    def to_property(self) -> str:
        return json.dumps({"namespace": self.namespace, "name": self.name, "uid": self.uid}, sort_keys=True)

    @classmethod
    def from_property(cls, text: str | None) -> Owner | None:
        try:
            raw = json.loads(text or "")
            return cls(str(raw["namespace"]), str(raw["name"]), str(raw["uid"]))
        except (ValueError, KeyError, TypeError):
            return None

    def __str__(self) -> str:
        return f"VectorCollection {self.namespace}/{self.name}"


class Claim(StrEnum):
    MINE = "Mine"
    ADOPT = "Adopt"
    """Ours to take: the same VectorCollection re-created (a new uid after deletionPolicy Retain),
    or a collection the operator made before it recorded owners."""
    FOREIGN = "Foreign"


def claim(recorded: Owner | None, made_by_operator: bool, me: Owner) -> Claim:
    """Whether a physical collection whose recorded owner is ``recorded`` is ``me``'s."""
    if recorded is None:
        return Claim.ADOPT if made_by_operator else Claim.FOREIGN
    if recorded == me:
        return Claim.MINE
    if (recorded.namespace, recorded.name) == (me.namespace, me.name):
        return Claim.ADOPT
    return Claim.FOREIGN
