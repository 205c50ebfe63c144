"""Reading one key of a Secret in the resource's namespace. Errors name the Secret and key, never
the value."""

from __future__ import annotations

import base64

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from vector_operator.api.kubernetes_types import SecretKeyReference


class SecretUnavailable(Exception):
    """The Secret or its key is missing (or not readable); the message says which."""


class SecretReader:
    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core = core
        self.namespace = namespace

    def __call__(self, ref: SecretKeyReference) -> str:
        try:
            secret = self.core.read_namespaced_secret(ref.name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                raise SecretUnavailable(
                    f"Secret {self.namespace}/{ref.name} does not exist: create it with the key {ref.key!r}"
                ) from None
            raise SecretUnavailable(
                f"cannot read Secret {self.namespace}/{ref.name} ({error.status} {error.reason}):"
                " grant the operator's service account get on secrets"
            ) from None
        data = secret.data or {}
        if ref.key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise SecretUnavailable(
                f"Secret {self.namespace}/{ref.name} has no key {ref.key!r} (it has: {keys})"
            )
        return base64.b64decode(data[ref.key]).decode()
