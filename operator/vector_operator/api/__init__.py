"""The vectors.aios.dev/v1alpha1 API: pydantic models of the spec and status of VectorCollection,
MigrationPlan and RollbackPolicy, the one source of truth for the CRDs (``make manifests``).

This package is the bottom layer: it imports nothing else from vector_operator.
"""

from vector_operator.api.conditions import Condition, ConditionStatus
from vector_operator.api.migrationplan import MigrationPlan, MigrationPlanSpec, MigrationPlanStatus
from vector_operator.api.resource import API_VERSION, GROUP, VERSION
from vector_operator.api.rollbackpolicy import RollbackPolicy, RollbackPolicySpec, RollbackPolicyStatus
from vector_operator.api.vectorcollection import (
    VectorCollection,
    VectorCollectionSpec,
    VectorCollectionStatus,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "MigrationPlan",
    "MigrationPlanSpec",
    "MigrationPlanStatus",
    "RollbackPolicy",
    "RollbackPolicySpec",
    "RollbackPolicyStatus",
    "VectorCollection",
    "VectorCollectionSpec",
    "VectorCollectionStatus",
]
