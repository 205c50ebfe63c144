"""A VectorCollection deleted: Retain keeps Milvus as it is; Delete drops the alias and the physical
collections this VectorCollection owns (never another one's). When the Secret is gone (a namespace
deletion removes it alongside), the credentials this operator last read from it are used. A Milvus
or Secret that stays unavailable does not keep the object forever: after a few tries (at once when
its namespace is terminating and nothing could recreate the Secret) it is released with a warning."""

from __future__ import annotations

import logging

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from vector_operator.api.vectorcollection import DeletionPolicy, VectorCollectionSpec
from vector_operator.collection.ownership import Owner
from vector_operator.collection.physical_names import scratch_names
from vector_operator.controller.context import OperatorContext
from vector_operator.kube.secrets import SecretReader, SecretUnavailable
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusEndpoint, MilvusUnavailable
from vector_operator.milvus.endpoints import MilvusNotConfigured, endpoint_for

RETRY_S = 10.0
DELETE_ATTEMPTS = 6


def delete_collection(
    context: OperatorContext, body: kopf.Body, retry: int, logger: logging.Logger | kopf.Logger
) -> None:
    meta = body.metadata
    uid, namespace, name = str(meta.uid), str(meta.namespace), str(meta.name)
    spec = VectorCollectionSpec.model_validate(dict(body.spec))
    alias = spec.collection_name
    context.metrics.forget_collection(uid, namespace, name)
    if spec.deletion_policy == DeletionPolicy.RETAIN:
        _drop_scratch(context, spec, Owner(namespace, name, uid), logger)
        context.forget(uid)
        kopf.info(
            body,
            reason="Retained",
            message=f"deletionPolicy Retain: alias {alias} and its collections stay in Milvus",
        )
        return
    try:
        endpoint = _deletion_endpoint(context, spec, uid, namespace, logger)
        milvus = MilvusCollections(context.clients, endpoint, context.metrics.observe_milvus_call)
        dropped = milvus.drop_all(alias, Owner(namespace, name, uid))
    except (MilvusUnavailable, SecretUnavailable, MilvusNotConfigured) as error:
        if isinstance(error, SecretUnavailable) and _namespace_terminating(context.core, namespace):
            why = f"namespace {namespace} is being deleted, so its Secret cannot come back"
        elif retry + 1 < DELETE_ATTEMPTS:
            raise kopf.TemporaryError(f"cannot drop {alias} yet: {error}", delay=RETRY_S) from None
        else:
            why = f"after {DELETE_ATTEMPTS} tries"
        context.forget(uid)
        message = f"gave up dropping {alias} ({why}), leaving it in Milvus: {error}"
        logger.warning(message)
        kopf.warn(body, reason="DeletionIncomplete", message=message)
        return
    context.forget(uid)
    what = ", ".join(dropped) or "no collections"
    message = f"deletionPolicy Delete: dropped {what} (those this VectorCollection owns)"
    logger.info(message)
    kopf.info(body, reason="Deleted", message=message)


def _drop_scratch(
    context: OperatorContext, spec: VectorCollectionSpec, owner: Owner, logger: logging.Logger | kopf.Logger
) -> None:
    """A tuning study's scratch collections are no data of anyone's: they go even with Retain."""
    try:
        endpoint = _deletion_endpoint(context, spec, owner.uid, owner.namespace, logger)
        milvus = MilvusCollections(context.clients, endpoint, context.metrics.observe_milvus_call)
        for name in scratch_names(spec.collection_name):
            milvus.drop(name, owner)
    except (MilvusUnavailable, SecretUnavailable, MilvusNotConfigured) as error:
        logger.warning(f"could not drop the tuning scratch collections of {spec.collection_name}: {error}")


def _deletion_endpoint(
    context: OperatorContext,
    spec: VectorCollectionSpec,
    uid: str,
    namespace: str,
    logger: logging.Logger | kopf.Logger,
) -> MilvusEndpoint:
    try:
        return endpoint_for(
            spec.milvus, context.settings.default_milvus_uri, SecretReader(context.core, namespace)
        )
    except SecretUnavailable as error:
        remembered = context.remembered_endpoint(uid)
        if remembered is None:
            raise
        logger.info(
            f"dropping {spec.collection_name} with the credentials this operator last read, as the"
            f" Secret is unavailable now: {error}"
        )
        return remembered


def _namespace_terminating(core: client.CoreV1Api, namespace: str) -> bool:
    """Whether the namespace is gone or going. Unknown (e.g. no RBAC to read namespaces): False."""
    try:
        found = core.read_namespace(namespace)
    except ApiException as error:
        return bool(error.status == 404)
    except Exception:  # the API server unreachable: decide nothing, the retries go on
        return False
    return bool(found.metadata and found.metadata.deletion_timestamp) or bool(
        found.status and found.status.phase == "Terminating"
    )
