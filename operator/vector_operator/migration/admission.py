"""What a plan's author may ask of the Job pods. The operator creates the Jobs, so Kubernetes RBAC
never checks the author: a plan could otherwise run any image, as any ServiceAccount, with the
Milvus token and the source URL in its environment. Only what the operator's installer allowed
(its allow-lists) is used; anything else is refused with a reason, and no Job is created."""

from __future__ import annotations

from vector_operator.api.migrationplan import MigrationPlanSpec
from vector_operator.migration.observation import Installation, Problem


def worker_image(spec: MigrationPlanSpec, installation: Installation) -> str:
    template = spec.batching.pod_template
    return template.image if template is not None and template.image else installation.worker_image


def service_account(spec: MigrationPlanSpec, installation: Installation) -> str | None:
    """The ServiceAccount the Jobs run as: the plan's choice, else the installation's (None: the
    namespace's default)."""
    template = spec.batching.pod_template
    chosen = template.service_account_name if template is not None else None
    return chosen or installation.worker_service_account


def refusal(spec: MigrationPlanSpec, installation: Installation) -> Problem | None:
    """Why the plan's pod settings cannot be used, or None when they can."""
    image = worker_image(spec, installation)
    if image not in installation.allowed_images:
        return Problem(
            "ImageNotAllowed",
            f"batching.podTemplate.image {image} is not an image this operator's installation allows"
            f" ({', '.join(sorted(installation.allowed_images))}): remove it to use the operator's worker"
            " image, or ask the platform team to allow it (--allowed-worker-image); no Job was created",
        )
    template = spec.batching.pod_template
    account = template.service_account_name if template is not None else None
    if account is not None and account not in installation.allowed_service_accounts:
        allowed = ", ".join(sorted(installation.allowed_service_accounts)) or "none"
        return Problem(
            "ServiceAccountNotAllowed",
            f"batching.podTemplate.serviceAccountName {account} is not a ServiceAccount this operator's"
            f" installation allows (allowed: {allowed}): remove it, or ask the platform team to allow it"
            " (--allowed-worker-service-account); no Job was created",
        )
    return None
