"""Decisions of RollbackPolicies: which plans a policy guards, and when a trigger fires."""
