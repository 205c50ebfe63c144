"""Adapters to the Kubernetes API: the MigrationPlan and its typed status, its ConfigMap, its
Jobs, the RollbackPolicies guarding it, the VectorCollection it fills, Secrets. Each turns API
objects into the typed views the decisions read, or carries one kind of effect out."""
