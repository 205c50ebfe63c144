"""The plugin's view of the cluster: the kubeconfig kubectl would use (KUBECONFIG, --kubeconfig,
--context), the namespace it would pick, typed reads of the three kinds, and patches. Every API
failure becomes one line that says what to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from vector_operator.api.resource import GROUP, VERSION
from vector_operator.kube.plan_history import read_history
from vector_operator.migration.history import BatchRecord

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
Json = dict[str, Any]
PLURALS = {
    "VectorCollection": "vectorcollections",
    "MigrationPlan": "migrationplans",
    "RollbackPolicy": "rollbackpolicies",
}


class PluginError(Exception):
    """One line for the user; the command exits non-zero."""


@dataclass
class Cluster:
    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    namespace: str

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
        try:
            api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            if context is not None:
                active = next((c for c in contexts if c.get("name") == context), active)
        except (ConfigException, OSError, TypeError) as error:
            raise PluginError(
                f"no usable kubeconfig ({error}): set KUBECONFIG or pass --kubeconfig"
            ) from None
        default = (active or {}).get("context", {}).get("namespace") or "default"
        return cls(client.CustomObjectsApi(api), client.CoreV1Api(api), namespace or default)

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except ApiException as error:
            if error.status == 404:
                raise PluginError(f"{what}: not found in namespace {self.namespace}") from None
            if error.status == 403:
                raise PluginError(
                    f"{what}: forbidden ({error.reason}); your RBAC does not allow it"
                ) from None
            raise PluginError(f"{what}: the API server answered {error.status} {error.reason}") from None
        except HTTPError as error:
            raise PluginError(f"{what}: cannot reach the API server ({type(error).__name__})") from None

    def items(self, kind: str, all_namespaces: bool) -> list[Json]:
        plural = PLURALS[kind]
        if all_namespaces:
            listed = self._call(
                f"list {plural}", self.custom.list_cluster_custom_object, GROUP, VERSION, plural
            )
        else:
            listed = self._call(
                f"list {plural}",
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                plural,
            )
        items = cast(list[Json], listed.get("items", []))
        for item in items:
            item.setdefault("kind", kind)
        return items

    def get(self, kind: str, name: str) -> Json:
        plural = PLURALS[kind]
        found = self._call(
            f"{kind} {name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            plural,
            name,
        )
        return cast(Json, found)

    def patch(self, kind: str, name: str, patch: Json | list[Json], status: bool = False) -> None:
        plural, content = PLURALS[kind], MERGE_PATCH if isinstance(patch, dict) else JSON_PATCH
        call = (
            self.custom.patch_namespaced_custom_object_status
            if status
            else self.custom.patch_namespaced_custom_object
        )
        self._call(
            f"{kind} {name}", call, GROUP, VERSION, self.namespace, plural, name, patch, _content_type=content
        )

    def history(self, plan: str) -> list[BatchRecord]:
        return cast(
            list[BatchRecord],
            self._call(f"the history of {plan}", read_history, self.core, self.namespace, plan),
        )
