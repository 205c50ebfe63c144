"""What every handler shares: settings from the command line, the Milvus clients, the
Kubernetes API client for Secrets, the metrics, one lock per object (change handlers and
timers of one object never reconcile at the same time), and the Milvus endpoint each object last
reached (so its finalizer can still drop collections when its Secret was deleted first, as when
a whole namespace goes)."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from kubernetes import client

from vector_operator import DEFAULT_WORKER_IMAGE
from vector_operator.metrics import OperatorMetrics
from vector_operator.migration.observation import Installation
from vector_operator.milvus.connection import MilvusClients, MilvusEndpoint
from vector_operator.sources.sql_engine import Timeouts


@dataclass(frozen=True)
class OperatorSettings:
    default_milvus_uri: str | None = None
    check_interval_s: float = 30.0
    probe_interval_s: float = 60.0
    plan_interval_s: float = 5.0
    copy_page_size: int = 1000
    """Rows per page when a re-index copies stored vectors."""
    worker_image: str = DEFAULT_WORKER_IMAGE
    worker_command: tuple[str, ...] = ("vector-operator", "worker")
    allowed_worker_images: frozenset[str] = frozenset()
    """Images plans may ask for, besides worker_image (always allowed)."""
    worker_service_account: str | None = None
    """The ServiceAccount Jobs run as when a plan names none (None: the namespace's default)."""
    allowed_worker_service_accounts: frozenset[str] = frozenset()
    """ServiceAccounts plans may run their Jobs as, besides worker_service_account; none by default."""
    source_timeouts: Timeouts = field(default_factory=Timeouts)
    """How long the planner waits to connect to a source and for one statement."""

    def installation(self) -> Installation:
        return Installation(
            worker_image=self.worker_image,
            worker_command=self.worker_command,
            allowed_images=self.allowed_worker_images | {self.worker_image},
            worker_service_account=self.worker_service_account,
            allowed_service_accounts=self.allowed_worker_service_accounts
            | ({self.worker_service_account} if self.worker_service_account else set()),
            default_milvus_uri=self.default_milvus_uri,
        )


@dataclass
class OperatorContext:
    settings: OperatorSettings
    core: client.CoreV1Api
    batch: client.BatchV1Api
    custom: client.CustomObjectsApi
    apps: client.AppsV1Api
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    clients: MilvusClients = field(default_factory=MilvusClients)
    _locks: defaultdict[str, threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    _endpoints: dict[str, MilvusEndpoint] = field(default_factory=dict)

    def lock_for(self, uid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[uid]

    def remember_endpoint(self, uid: str, endpoint: MilvusEndpoint) -> None:
        """The endpoint (with its credentials) the object reached last; kept in memory only."""
        with self._locks_guard:
            self._endpoints[uid] = endpoint

    def remembered_endpoint(self, uid: str) -> MilvusEndpoint | None:
        with self._locks_guard:
            return self._endpoints.get(uid)

    def forget(self, uid: str) -> None:
        with self._locks_guard:
            self._locks.pop(uid, None)
            self._endpoints.pop(uid, None)
