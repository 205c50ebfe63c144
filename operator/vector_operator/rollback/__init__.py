"""Decisions of RollbackPolicies: which plans a policy guards, when a trigger fires, and how a
rollback runs, one recorded action at a time."""
