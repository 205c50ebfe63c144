"""`vector-operator run`: the Kopf operator process.

Kopf's own bookkeeping lives under our API group from the first release: progress and diff-base
annotations `vectors.aios.dev/...`, the finalizer `vectors.aios.dev/finalizer`. Watches time out
on the server side and are re-established, so the operator never goes silent on a dead
connection; an inactivity timeout backs that up.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from vector_operator import DEFAULT_WORKER_IMAGE
from vector_operator.api.resource import GROUP
from vector_operator.controller.context import OperatorContext, OperatorSettings
from vector_operator.handlers import migrationplans, rollbackpolicies, vectorcollections
from vector_operator.sources.sql_engine import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_STATEMENT_TIMEOUT_S,
    Timeouts,
)

FINALIZER = f"{GROUP}/finalizer"


@dataclass(frozen=True)
class RunOptions:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    milvus_uri: str | None = None
    metrics_port: int = 8080
    metrics_address: str = "127.0.0.1"
    liveness_port: int | None = None
    check_interval_s: float = 30.0
    probe_interval_s: float = 60.0
    plan_interval_s: float = 5.0
    copy_page_size: int = 1000
    worker_image: str = DEFAULT_WORKER_IMAGE
    worker_command: tuple[str, ...] = ("vector-operator", "worker")
    allowed_worker_images: tuple[str, ...] = ()
    worker_service_account: str | None = None
    allowed_worker_service_accounts: tuple[str, ...] = ()
    source_connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    source_statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S
    peering: str | None = None
    priority: int | None = None
    log_format: str = "plain"
    verbose: bool = False


def peering_priority(options: RunOptions) -> int | None:
    """The replica's priority among its peers: the one given, else a random one (replicas of one
    Deployment share their arguments, and Kopf pauses all replicas of a tied priority)."""
    if options.peering is None or options.priority is not None:
        return options.priority
    return random.SystemRandom().randint(1, 2**31 - 1)


PYMILVUS_RPC_LOGGER = "pymilvus.decorators"
"""pymilvus logs every failed RPC at ERROR with a traceback before raising it; the operator handles
each one itself (retries, MilvusUnavailable with the endpoint and the operation, status, Events)."""

QUIET_WATCH_HANDLERS = ("job-finished", "target-ready")
"""Handlers that see every event of every Job or VectorCollection: their routine success is not news."""


class _QuietWatchSuccesses(logging.Filter):
    """Drops Kopf's "Handler '<id>' succeeded." line for QUIET_WATCH_HANDLERS (every status write
    of every VectorCollection would log one); their failures are still logged."""

    _QUIET = frozenset(f"Handler {handler!r} succeeded." for handler in QUIET_WATCH_HANDLERS)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self._QUIET


class _NoRoutineSuccessEvents(logging.Filter):
    """Keeps Kopf's "Handler '<id>' succeeded." / "Timer '<id>' succeeded." lines out of the
    Events (they stay in the log): the periodic check of every VectorCollection would post one
    Event per object every check interval (500 collections: 17 Event writes a second), and each
    reconcile one more beside the operator's own Ready / Deleted Events, which say what succeeded."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        routine = message.startswith(("Handler '", "Timer '")) and message.endswith("' succeeded.")
        return not routine


def _quiet_routine_success_events() -> None:
    """Adds _NoRoutineSuccessEvents to Kopf's handler that posts the object loggers' records as
    Events (the log's own handlers keep every line)."""
    for handler in logging.getLogger("kopf.objects").handlers:
        if type(handler).__name__ == "K8sPoster":
            handler.addFilter(_NoRoutineSuccessEvents())


def kubernetes_api() -> client.ApiClient:
    """In a pod: the service account; elsewhere: KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def build_registry(context: OperatorContext) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = FINALIZER
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 30
        settings.watching.inactivity_timeout = 600
        settings.networking.request_timeout = 60
        settings.posting.level = logging.INFO
        settings.execution.max_workers = 16

    @kopf.on.cleanup(registry=registry)
    def close_clients(**_: Any) -> None:
        context.clients.close()

    vectorcollections.register(registry, context)
    migrationplans.register(registry, context)
    rollbackpolicies.register(registry, context)
    return registry


def run(options: RunOptions) -> None:
    kopf.configure(
        verbose=options.verbose,
        log_format=kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger("kopf.objects").addFilter(_QuietWatchSuccesses())
    logging.getLogger(PYMILVUS_RPC_LOGGER).setLevel(logging.CRITICAL)
    _quiet_routine_success_events()
    api = kubernetes_api()
    context = OperatorContext(
        settings=OperatorSettings(
            default_milvus_uri=options.milvus_uri,
            check_interval_s=options.check_interval_s,
            probe_interval_s=options.probe_interval_s,
            plan_interval_s=options.plan_interval_s,
            copy_page_size=options.copy_page_size,
            worker_image=options.worker_image,
            worker_command=options.worker_command,
            allowed_worker_images=frozenset(options.allowed_worker_images),
            worker_service_account=options.worker_service_account,
            allowed_worker_service_accounts=frozenset(options.allowed_worker_service_accounts),
            source_timeouts=Timeouts(options.source_connect_timeout_s, options.source_statement_timeout_s),
        ),
        core=client.CoreV1Api(api),
        batch=client.BatchV1Api(api),
        custom=client.CustomObjectsApi(api),
        apps=client.AppsV1Api(api),
    )
    registry = build_registry(context)
    if options.metrics_port:
        context.metrics.serve(options.metrics_port, options.metrics_address)
    liveness = (
        f"http://{options.metrics_address}:{options.liveness_port}/healthz" if options.liveness_port else None
    )
    priority = peering_priority(options)
    if options.peering is not None:
        logging.getLogger(__name__).info(f"peering as {options.peering!r} with priority {priority}")
    kopf.run(
        registry=registry,
        clusterwide=options.all_namespaces,
        namespaces=list(options.namespaces),
        standalone=options.peering is None,
        peering_name=options.peering,
        priority=priority,
        liveness_endpoint=liveness,
    )
