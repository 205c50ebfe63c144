"""A MigrationPlan deleted: its Jobs and ConfigMap go with it (owner references); a BlueGreen plan
that never cut over drops the collection it was filling, if its VectorCollection owns it and the
alias does not serve it."""

from __future__ import annotations

import logging

import kopf

from vector_operator.api.kubernetes_types import SecretKeyReference
from vector_operator.api.migrationplan import MigrationMode, MigrationPhase
from vector_operator.collection.ownership import Owner
from vector_operator.contract.sync import slot_name
from vector_operator.controller.context import OperatorContext
from vector_operator.kube import plan_config, plans, targets
from vector_operator.kube.secrets import SecretReader, SecretUnavailable
from vector_operator.migration import sync_worker
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusUnavailable
from vector_operator.milvus.endpoints import MilvusNotConfigured, endpoint_for
from vector_operator.sources import SourceMisconfigured, SourceUnavailable, pg_logical

ATTEMPTS = 5


def _drop_slot(
    context: OperatorContext,
    body: kopf.Body,
    plan: plans.StoredPlan,
    url_ref: SecretKeyReference,
    retry: int,
    logger: logging.Logger | kopf.Logger,
) -> None:
    """The plan's replication slot goes with it: a slot nobody reads keeps the database's
    write-ahead log forever."""
    slot = slot_name(plan.identity.uid)
    try:
        url = SecretReader(context.core, plan.identity.namespace)(url_ref)
        if pg_logical.drop_slot(url, slot, context.settings.source_timeouts):
            kopf.info(body, reason="ReplicationSlotDropped", message=f"dropped the replication slot {slot}")
    except (SecretUnavailable, SourceUnavailable, SourceMisconfigured) as error:
        if retry < ATTEMPTS:
            raise kopf.TemporaryError(
                f"cannot drop the replication slot {slot} yet: {error}", delay=10
            ) from None
        logger.warning(f"gave up dropping the replication slot {slot}: {error}")
        kopf.warn(
            body,
            reason="DeletionIncomplete",
            message=f"gave up dropping the replication slot {slot} ({error}): drop it with"
            f" SELECT pg_drop_replication_slot('{slot}'), or it keeps the source's write-ahead log",
        )


def delete_plan(
    context: OperatorContext, body: kopf.Body, retry: int, logger: logging.Logger | kopf.Logger
) -> None:
    uid = str(body.metadata.uid)
    with context.lock_for(uid):  # a step under way publishes its figures before they are forgotten
        context.metrics.forget_plan(str(body.metadata.namespace), str(body.metadata.name))
    context.forget(uid)
    try:
        plan = plans.parse_plan(dict(body))
    except plans.UnreadableStatus:
        return
    status, namespace = plan.status, plan.identity.namespace
    if sync_worker.needs_slot(plan.spec) and plan.spec.source.sql is not None:
        _drop_slot(context, body, plan, plan.spec.source.sql.url_secret_ref, retry, logger)
    new, previous, pinned_target = (
        status.new_physical_collection,
        status.previous_physical_collection,
        status.target,
    )
    if (
        plan.spec.mode is not MigrationMode.BLUE_GREEN
        or not new
        or new == previous
        or status.phase is MigrationPhase.SUCCEEDED
        or pinned_target is None
    ):
        return
    try:
        spec = plan_config.read_config(context.core, namespace, plan.identity.name).pinned
        collection_spec = spec.spec if spec is not None else None
        if collection_spec is None:
            target = targets.read_target(context.custom, namespace, plan.spec.target_ref.name)
            if target is None:
                return
            collection_spec = target.spec
        reader = SecretReader(context.core, namespace)
        endpoint = endpoint_for(collection_spec.milvus, context.settings.default_milvus_uri, reader)
        milvus = MilvusCollections(context.clients, endpoint, context.metrics.observe_milvus_call)
        if milvus.alias_target(collection_spec.collection_name) == new:
            return  # it serves: never drop what applications query
        owner = Owner(namespace, plan.spec.target_ref.name, pinned_target.uid)
        if milvus.drop(new, owner):
            kopf.info(
                body, reason="PartialCollectionDropped", message=f"dropped {new}, which this plan was filling"
            )
    except (SecretUnavailable, MilvusNotConfigured, MilvusUnavailable) as error:
        if retry < ATTEMPTS:
            raise kopf.TemporaryError(f"cannot drop {new} yet: {error}", delay=10) from None
        logger.warning(f"gave up dropping {new}: {error}")
        kopf.warn(body, reason="DeletionIncomplete", message=f"gave up dropping {new}: {error}")
