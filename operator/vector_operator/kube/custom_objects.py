"""Reading one of this operator's custom objects by name: its body, or None when it is gone."""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from vector_operator.api.resource import GROUP, VERSION


def read_custom_object(
    custom: client.CustomObjectsApi, namespace: str, plural: str, name: str
) -> dict[str, Any] | None:
    try:
        found = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return cast(dict[str, Any], found)
