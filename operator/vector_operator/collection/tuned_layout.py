"""The layout a VectorCollection serves with once tuning applied its result: the spec's, with the
index and search parameters the study chose, for as long as the spec's own index and search
parameters stay those the study started from (a change of the spec wins again)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from vector_operator.api.collection_tuning import TuningStatus
from vector_operator.collection.milvus_layout import CollectionLayout, IndexLayout


def serving_fingerprint(layout: CollectionLayout) -> str:
    """Index type, metric, build and search parameters, in 16 hex digits."""
    canonical = json.dumps(
        [layout.index.index_type, layout.index.metric, sorted(layout.index.params.items()),
         sorted(layout.search_params.items())]
    )  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def effective_layout(layout: CollectionLayout, tuning: TuningStatus | None) -> CollectionLayout:
    """``layout`` (from the spec) with tuning's applied parameters, when they were chosen for it."""
    if tuning is None or tuning.applied is None or tuning.applied_for != serving_fingerprint(layout):
        return layout
    applied = tuning.applied
    index = IndexLayout(applied.index_type, layout.index.metric, dict(applied.params))
    return dataclasses.replace(layout, index=index, search_params=dict(applied.search_params))
