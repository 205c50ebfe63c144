"""What a VectorCollection spec asks of Milvus, in Milvus's own terms.

- The *vector space* (dimension, metric, embedding model, primary-key type): what cannot change in
  place. It is written into the physical collection's properties when the operator creates it,
  so a later reconcile (even by a restarted operator) knows what the data was built with.
- The *index*: type, metric and build parameters. A fingerprint of them is written into the
  collection's properties when the index is built, so a changed spec is detected without trusting
  what a given Milvus reports back about parameters (Milvus Lite reports none).
- The scalar fields and the serving search parameters.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from vector_operator.api.vectorcollection import (
    CONTENT_HASH_FIELD,
    DEFAULT_VARCHAR_KEY_LENGTH,
    PRIMARY_KEY_FIELD,
    VECTOR_FIELD,
    PrimaryKeyType,
    VectorCollectionSpec,
)

__all__ = [
    "CONTENT_HASH_FIELD",
    "PRIMARY_KEY_FIELD",
    "VECTOR_FIELD",
    "CollectionLayout",
    "IndexLayout",
    "VectorSpace",
    "layout_of",
]

MANAGED_BY = "vector-operator"
# Collection properties the operator writes on the physical collections it creates.
SPACE_PROPERTY = "vectors.aios.dev/vector-space"
INDEX_PROPERTY = "vectors.aios.dev/index"


@dataclass(frozen=True)
class VectorSpace:
    dimension: int
    metric: str
    model: str
    primary_key_type: str

    def to_property(self) -> str:
        """The physical collection's SPACE_PROPERTY: who manages it and what its vectors are."""
        return json.dumps(
            {
                "managedBy": MANAGED_BY,
                "dimension": self.dimension,
                "metric": self.metric,
                "model": self.model,
                "primaryKeyType": self.primary_key_type,
            },
            sort_keys=True,
        )

    @classmethod
    def from_property(cls, text: str) -> VectorSpace | None:
        try:
            raw = json.loads(text)
            if raw.get("managedBy") != MANAGED_BY:
                return None
            return cls(
                int(raw["dimension"]), str(raw["metric"]), str(raw["model"]), str(raw["primaryKeyType"])
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def differences(self, other: VectorSpace) -> list[str]:
        """What differs from `other` (this is the desired space, `other` the stored one)."""
        changes = []
        for name in ("dimension", "metric", "model", "primary_key_type"):
            wanted, stored = getattr(self, name), getattr(other, name)
            if wanted != stored:
                label = {
                    "metric": "metricType",
                    "model": "embedding.model",
                    "primary_key_type": "primaryKey.type",
                }
                changes.append(f"{label.get(name, name)} {stored} -> {wanted}")
        return changes


@dataclass(frozen=True)
class IndexLayout:
    index_type: str
    metric: str
    params: dict[str, int] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Type, metric and params in 16 hex digits: the collection's INDEX_PROPERTY."""
        canonical = json.dumps([self.index_type, self.metric, sorted(self.params.items())])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.index_type}/{self.metric}" + (f" ({params})" if params else "")


@dataclass(frozen=True)
class ScalarFieldLayout:
    name: str
    type: str
    max_length: int | None = None


@dataclass(frozen=True)
class CollectionLayout:
    space: VectorSpace
    index: IndexLayout
    fields: tuple[ScalarFieldLayout, ...]
    primary_key_max_length: int | None
    search_params: dict[str, int]

    def search_request(self) -> dict[str, Any]:
        """The `search_params` argument of a serving search."""
        return {"metric_type": self.space.metric, "params": dict(self.search_params)}


def layout_of(spec: VectorCollectionSpec) -> CollectionLayout:
    metric = spec.metric_type.value
    params: dict[str, int] = {}
    if spec.index.params is not None:
        given = spec.index.params
        for milvus_name, value in (
            ("nlist", given.nlist),
            ("m", given.m),
            ("nbits", given.nbits),
            ("M", given.hnsw_m),
            ("efConstruction", given.ef_construction),
        ):
            if value is not None:
                params[milvus_name] = value
    search: dict[str, int] = {}
    if spec.search_params is not None:
        if spec.search_params.nprobe is not None:
            search["nprobe"] = spec.search_params.nprobe
        if spec.search_params.ef is not None:
            search["ef"] = spec.search_params.ef
    key_type = spec.primary_key.type
    return CollectionLayout(
        space=VectorSpace(spec.dimension, metric, spec.embedding.model, key_type.value),
        index=IndexLayout(spec.index.type.value, metric, params),
        fields=tuple(ScalarFieldLayout(f.name, f.type.value, f.max_length) for f in spec.fields or ()),
        primary_key_max_length=(
            (spec.primary_key.max_length or DEFAULT_VARCHAR_KEY_LENGTH)
            if key_type == PrimaryKeyType.VARCHAR
            else None
        ),
        search_params=search,
    )
