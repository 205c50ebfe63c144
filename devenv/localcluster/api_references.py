"""What the node reads from the API for a pod: Secrets, ConfigMaps and ServiceAccount tokens, with
the node's own credentials (so the Node authorizer lets it read only what its pods refer to)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localcluster.pod_environment import CreateContainerConfigError
from localcluster.pod_volumes import decode_secret_data

Json = dict[str, Any]


class ApiReferences:
    """Secrets, ConfigMaps and tokens, read with the node's own credentials."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        found = self._read(self.core.read_namespaced_secret, "secret", namespace, name)
        return None if found is None else decode_secret_data(found.data)

    def config_map(self, namespace: str, name: str) -> Mapping[str, str] | None:
        found = self._read(self.core.read_namespaced_config_map, "configmap", namespace, name)
        return None if found is None else dict(found.data or {})

    def service_account_token(self, pod: Json, audience: str | None, expiration_seconds: int) -> str:
        metadata = pod["metadata"]
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[audience] if audience else [],
                expiration_seconds=max(expiration_seconds, 600),
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1", kind="Pod", name=metadata["name"], uid=metadata["uid"]
                ),
            )
        )
        account = pod["spec"].get("serviceAccountName") or "default"
        try:
            answer = self.core.create_namespaced_service_account_token(
                account, metadata["namespace"], request
            )
        except ApiException as error:
            raise CreateContainerConfigError(
                f"could not get a token for service account {account!r}: {error.reason}"
            ) from error
        if answer.status is None or not answer.status.token:
            raise CreateContainerConfigError(
                f"the TokenRequest for service account {account!r} returned no token"
            )
        return answer.status.token

    @staticmethod
    def _read(read: Any, kind: str, namespace: str, name: str) -> Any:
        try:
            return read(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            # 403 right after binding: the Node authorizer has not yet seen the pod's references.
            raise CreateContainerConfigError(f'cannot read {kind} "{name}" yet: {error.reason}') from error
