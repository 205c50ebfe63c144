"""How much history a status keeps. What a spec may ask for is bounded by it: a trigger's
forBatches can never exceed the batches a MigrationPlan's status remembers."""

from __future__ import annotations

MAX_RECENT_BATCHES = 32
"""Finished batches whose quality a MigrationPlan's status keeps (recentBatches)."""
MAX_RECENT_FAILURES = 20
"""Failed batch attempts a MigrationPlan's status keeps (recentFailures)."""
MAX_EXECUTIONS = 20
"""Executions a RollbackPolicy's status keeps."""
SIMILARITY_RANGE = (-1.0, 1.0)
"""A cosine similarity (coherence) lies in [-1, 1]; a corrupted vector can point away."""
