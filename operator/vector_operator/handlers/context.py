"""What every handler shares: settings from the command line, the Milvus clients, the
Kubernetes API client for Secrets, the metrics, and one lock per object (change handlers and
timers of one object never reconcile at the same time)."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from kubernetes import client

from vector_operator.metrics import OperatorMetrics
from vector_operator.milvus.connection import MilvusClients


@dataclass(frozen=True)
class OperatorSettings:
    default_milvus_uri: str | None = None
    check_interval_s: float = 30.0
    probe_interval_s: float = 60.0


@dataclass
class OperatorContext:
    settings: OperatorSettings
    core: client.CoreV1Api
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    clients: MilvusClients = field(default_factory=MilvusClients)
    _locks: defaultdict[str, threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, uid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[uid]

    def forget(self, uid: str) -> None:
        with self._locks_guard:
            self._locks.pop(uid, None)
