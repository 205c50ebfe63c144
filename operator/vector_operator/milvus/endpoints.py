"""From a VectorCollection's `spec.milvus` (and the operator's default URI) to a
:class:`MilvusEndpoint`, with the credentials read through the given Secret reader."""

from __future__ import annotations

from collections.abc import Callable

from vector_operator.api.kubernetes_types import SecretKeyReference
from vector_operator.api.vectorcollection import MilvusConnection
from vector_operator.milvus.connection import MilvusEndpoint


class MilvusNotConfigured(Exception):
    """The spec names no Milvus and the operator has no default: the user must set one."""


def endpoint_for(
    connection: MilvusConnection, default_uri: str | None, read_secret: Callable[[SecretKeyReference], str]
) -> MilvusEndpoint:
    uri = connection.uri or default_uri
    if not uri:
        raise MilvusNotConfigured(
            "no Milvus to connect to: set spec.milvus.uri, or start the operator with --milvus-uri"
        )
    token = read_secret(connection.secret_ref).strip() if connection.secret_ref else ""
    tls = connection.tls
    ca_pem = read_secret(tls.ca_secret_ref) if tls is not None and tls.ca_secret_ref else ""
    return MilvusEndpoint(
        uri=uri,
        database=connection.database,
        token=token,
        tls=bool(tls and tls.enabled) or uri.startswith("https://"),
        ca_pem=ca_pem,
        server_name=(tls.server_name or "") if tls else "",
        insecure_skip_verify=bool(tls and tls.insecure_skip_verify),
    )
