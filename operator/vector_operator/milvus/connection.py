"""Connecting to the Milvus a VectorCollection names (or the operator's default).

Credentials come from a Secret the handler read; they live in a :class:`MilvusEndpoint` whose
repr and every error message carry only the URI and database, never the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from vector_operator.milvus.index_probe import IndexSupportCache

CONNECT_TIMEOUT_S = 5.0


class MilvusUnavailable(Exception):
    """Milvus could not be reached or refused the call; the message names the URI, never secrets."""


@dataclass(frozen=True)
class MilvusEndpoint:
    uri: str
    database: str = "default"
    token: str = field(default="", repr=False)  # a token, or user:password
    tls: bool = False
    ca_pem: str = field(default="", repr=False)
    server_name: str = ""
    insecure_skip_verify: bool = False

    @property
    def display(self) -> str:
        """Where it is, for messages: the URI without any userinfo, and the database."""
        parts = urlsplit(self.uri)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return f"{urlunsplit((parts.scheme, host, parts.path, '', ''))} (database {self.database})"

    def cache_key(self) -> str:
        material = "\0".join(
            (self.uri, self.database, self.token, str(self.tls), self.ca_pem, self.server_name)
        )
        return hashlib.sha256(material.encode()).hexdigest()


class MilvusClients:
    """One pymilvus client per endpoint, reused across reconciles, dropped when it fails."""

    def __init__(self) -> None:
        self._clients: dict[str, MilvusClient] = {}
        self._lock = threading.Lock()
        self._alias_locks: dict[str, threading.Lock] = {}
        self._ca_dir = Path(tempfile.mkdtemp(prefix="vector-operator-ca-"))
        self.index_support = IndexSupportCache()
        """What each server really builds, probed once per server and version."""

    def get(self, endpoint: MilvusEndpoint) -> MilvusClient:
        key = endpoint.cache_key()
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client
        options: dict[str, object] = {}
        uri = endpoint.uri
        if endpoint.tls or uri.startswith("https://"):
            options["secure"] = True
            if endpoint.ca_pem:
                ca_file = self._ca_dir / f"{key[:16]}.pem"
                ca_file.write_text(endpoint.ca_pem)
                options["server_pem_path"] = str(ca_file)
            if endpoint.server_name:
                options["server_name"] = endpoint.server_name
        try:
            client = MilvusClient(
                uri=uri,
                token=endpoint.token,
                db_name=endpoint.database,
                timeout=CONNECT_TIMEOUT_S,
                **options,
            )
        except MilvusException as error:
            raise MilvusUnavailable(
                f"cannot connect to Milvus at {endpoint.display}: {error.message}"
            ) from None
        except Exception as error:  # grpc / DNS / TLS errors surface as assorted types
            raise MilvusUnavailable(
                f"cannot connect to Milvus at {endpoint.display}: {type(error).__name__}"
            ) from None
        with self._lock:
            self._clients[key] = client
        return client

    def alias_lock(self, endpoint: MilvusEndpoint) -> threading.Lock:
        """Held while changing an alias on the endpoint's server: one alias change at a time.

        Milvus Lite (3.2) rewrites its alias table through a single temporary file, so two
        concurrent alias changes on one server fail with ENOENT on the rename. Alias changes are
        rare and quick; serialising them costs Milvus standalone nothing that matters."""
        with self._lock:
            return self._alias_locks.setdefault(endpoint.uri, threading.Lock())

    def forget(self, endpoint: MilvusEndpoint) -> None:
        """Drop the cached client (after a failure), so the next call gets a fresh one.

        The dropped client is not closed: other handler threads may be in the middle of a call
        on it, and closing a MilvusClient fails their calls ("should create connection first"),
        which then forget and close again: one failure cascades through every concurrent
        reconcile. pymilvus shares one gRPC channel per address and token among its clients and
        recovers it itself on UNAVAILABLE; an unreferenced client only leaves that channel."""
        with self._lock:
            self._clients.pop(endpoint.cache_key(), None)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
