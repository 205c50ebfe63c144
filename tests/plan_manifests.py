"""The smallest valid MigrationPlan manifest, for tests that need a plan to exist (in the API
server, in a lint run, or as a parsed spec) rather than one that migrates."""

from __future__ import annotations

from typing import Any


def minimal_plan(name: str, target: str = "articles", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "vectors.aios.dev/v1alpha1",
        "kind": "MigrationPlan",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": target},
            "source": {
                "sql": {
                    "urlSecretRef": {"name": "db", "key": "url"},
                    "table": "t",
                    "primaryKey": "id",
                    "textColumns": ["body"],
                }
            },
            **spec,
        },
    }
