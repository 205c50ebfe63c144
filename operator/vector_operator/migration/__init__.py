"""Decisions of the MigrationPlan controller: batches, Jobs, progress and the phase machine."""
