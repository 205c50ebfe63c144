"""What to change in Milvus so that a VectorCollection's alias serves what its spec declares, and
how to report the result. Pure: Milvus is observed and changed by the adapter; this module only
decides.

The physical collection behind the alias is chosen in this order: the one the alias points at (a
MigrationPlan may just have swung it), the one the status records, the newest `<alias>__v<N>`,
or a new `<alias>__v1`. Repairs that lose nothing are made (create, index, load, alias); a change
of vector space is never made in place: the collection keeps serving and UpToDate=False says
that a MigrationPlan is needed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from vector_operator.collection.index_support import IndexSupport
from vector_operator.collection.milvus_layout import CollectionLayout, VectorSpace
from vector_operator.collection.ownership import Claim, Owner, claim
from vector_operator.collection.physical_names import physical_collections, physical_name
from vector_operator.status_conditions import ConditionUpdate


@dataclass(frozen=True)
class ObservedIndex:
    name: str
    index_type: str
    metric: str
    state: str  # Milvus: Finished, InProgress, Pending (Unissued), Failed
    indexed_rows: int = 0
    pending_rows: int = 0
    failure: str = ""


@dataclass(frozen=True)
class ObservedPhysical:
    name: str
    dimension: int
    space: VectorSpace | None  # from the property the operator wrote; None: not ours or unreadable
    fields: dict[str, str] = field(default_factory=dict)  # scalar field name -> Milvus type name
    index: ObservedIndex | None = None
    index_fingerprint: str | None = None  # the property written with the last index build
    loaded: bool = False
    owner: Owner | None = None  # the VectorCollection recorded as its owner

    def claim_by(self, me: Owner) -> Claim:
        return claim(self.owner, self.space is not None, me)


@dataclass(frozen=True)
class ObservedMilvus:
    physicals: dict[str, ObservedPhysical]  # the alias's own `<alias>__v<N>` collections
    alias_target: str | None  # what the alias points at now, ours or not
    scratch: tuple[str, ...] = ()  # a tuning study's scratch collections that exist


@dataclass(frozen=True)
class CreateCollection:
    name: str
    owner: Owner


@dataclass(frozen=True)
class ClaimOwnership:
    """Record ``owner`` on a collection that is ours to adopt."""

    name: str
    owner: Owner


@dataclass(frozen=True)
class BuildIndex:
    name: str
    replace: str | None = None  # the index to drop first (releasing the collection while it builds)


@dataclass(frozen=True)
class LoadCollection:
    name: str


@dataclass(frozen=True)
class PointAlias:
    name: str
    exists: bool  # alter the alias, or create it


Step = CreateCollection | ClaimOwnership | BuildIndex | LoadCollection | PointAlias


@dataclass(frozen=True)
class Notice:
    """Something a human should see as an Event."""

    reason: str
    message: str
    warning: bool = False


@dataclass
class Plan:
    physical: str
    steps: list[Step] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    lost: bool = False  # the recorded physical collection was gone and is recreated empty
    migration_required: list[str] = field(default_factory=list)
    conflict: str | None = None  # the alias belongs to someone else: nothing is changed
    conflict_reason: str = "AliasInUse"
    index_refused: str | None = None  # the server does not build the spec's index type: why
    reindex: bool = False  # the serving collection's index differs: re-index onto a new collection


def choose_physical(alias: str, recorded: str | None, observed: ObservedMilvus) -> str:
    if observed.alias_target in observed.physicals:
        return observed.alias_target
    if recorded is not None and recorded in observed.physicals:
        return recorded
    ours = physical_collections(alias, observed.physicals)
    if ours:
        return ours[-1]
    return recorded or physical_name(alias, 1)


def _foreign_owner(observed: ObservedMilvus, me: Owner) -> tuple[list[str], Owner | None]:
    foreign = sorted(n for n, p in observed.physicals.items() if p.claim_by(me) is Claim.FOREIGN)
    owners = [observed.physicals[name].owner for name in foreign]
    return foreign, next((owner for owner in owners if owner is not None), None)


def plan_reconciliation(
    layout: CollectionLayout,
    alias: str,
    recorded: str | None,
    observed: ObservedMilvus,
    me: Owner,
    support: IndexSupport | None = None,
) -> Plan:
    """The steps that make Milvus serve the spec. An index the server does not build is never
    created (``index_refused``); an index change on the collection the alias serves is left to a
    re-index (``reindex``), so searches never pause; elsewhere the index is rebuilt in place."""
    physical = choose_physical(alias, recorded, observed)
    plan = Plan(physical)
    foreign, owner = _foreign_owner(observed, me)
    if foreign:
        plan.conflict_reason = "Conflict"
        holder = (
            str(owner) if owner is not None else "no VectorCollection (this operator did not create them)"
        )
        plan.conflict = (
            f"alias {alias} is taken: {', '.join(foreign)} belong to {holder}; nothing was changed."
            " Choose another collectionName, or another Milvus database"
        )
        return plan
    for name, existing_physical in sorted(observed.physicals.items()):
        if existing_physical.claim_by(me) is Claim.ADOPT:
            plan.steps.append(ClaimOwnership(name, me))
            plan.notices.append(Notice("Adopted", f"recorded this VectorCollection as the owner of {name}"))
    elsewhere = observed.alias_target is not None and observed.alias_target not in observed.physicals
    if elsewhere and recorded is None and not observed.physicals:
        # A new VectorCollection never takes over an alias that serves another collection.
        plan.conflict = (
            f"alias {alias} already points at {observed.alias_target}, which this VectorCollection did not"
            " create: choose another collectionName, or move that alias away first"
        )
        return plan
    existing = observed.physicals.get(physical)
    refusal = support.refusal(layout.index.index_type) if support is not None else None
    if existing is None and refusal is not None:
        plan.index_refused = refusal
        return plan
    if existing is None:
        plan.steps.append(CreateCollection(physical, me))
        plan.steps.append(LoadCollection(physical))
        if recorded is not None:
            plan.lost = True
            plan.notices.append(
                Notice(
                    "PhysicalCollectionLost",
                    f"physical collection {physical} was dropped outside the operator; recreated it empty:"
                    " run a MigrationPlan to refill it",
                    warning=True,
                )
            )
        else:
            plan.notices.append(
                Notice(
                    "CollectionCreated", f"created physical collection {physical} ({layout.index.describe()})"
                )
            )
    else:
        plan.migration_required = space_changes(layout, existing)
        if not plan.migration_required:
            if refusal is not None and index_differs(layout, existing):
                plan.index_refused = refusal
            elif existing.index is None:
                plan.steps.append(BuildIndex(physical))
                plan.notices.append(
                    Notice("IndexCreating", f"building index {layout.index.describe()} on {physical}")
                )
            elif index_differs(layout, existing) and observed.alias_target == physical:
                plan.reindex = True
            elif index_differs(layout, existing):
                plan.steps.append(BuildIndex(physical, replace=existing.index.name))
                plan.notices.append(
                    Notice(
                        "IndexRebuilding",
                        f"index on {physical} differs from the spec ({existing.index.index_type} -> "
                        f"{layout.index.describe()}): rebuilding it in place, as the alias does not"
                        " serve it",
                    )
                )
        if not existing.loaded or any(isinstance(step, BuildIndex) for step in plan.steps):
            plan.steps.append(LoadCollection(physical))
    if observed.alias_target != physical:
        plan.steps.append(PointAlias(physical, exists=observed.alias_target is not None))
        if observed.alias_target is None:
            reason, message = "AliasCreated", f"alias {alias} now points at {physical}"
            if recorded is not None and existing is not None:
                reason, message = "AliasRepaired", f"alias {alias} was missing; it points at {physical} again"
        else:
            reason = "AliasRepaired"
            message = (
                f"alias {alias} pointed at {observed.alias_target}, not one of its own collections;"
                f" it points at {physical} again"
            )
        plan.notices.append(Notice(reason, message, warning=reason == "AliasRepaired"))
    return plan


def serving_layout(layout: CollectionLayout, existing: ObservedPhysical) -> CollectionLayout:
    """The layout to search the serving collection with: the spec's search parameters, but the
    dimension and metric the collection was built with. They differ from the spec's while a
    migration is required, and a query in the spec's would fail on the collection that serves."""
    if existing.index is not None and existing.index.metric:
        metric = existing.index.metric
    elif existing.space is not None:
        metric = existing.space.metric
    else:
        metric = layout.space.metric
    space = dataclasses.replace(
        layout.space, dimension=existing.dimension or layout.space.dimension, metric=metric
    )
    return dataclasses.replace(layout, space=space)


def index_differs(layout: CollectionLayout, existing: ObservedPhysical) -> bool:
    """Whether the index must be rebuilt. Without the operator's fingerprint (a collection it did
    not index) only what Milvus reports can be compared: type and metric."""
    if existing.index is None:
        return True
    if existing.index_fingerprint is not None:
        return existing.index_fingerprint != layout.index.fingerprint
    return (existing.index.index_type, existing.index.metric) != (
        layout.index.index_type,
        layout.index.metric,
    )


def space_changes(layout: CollectionLayout, existing: ObservedPhysical) -> list[str]:
    """Why the existing physical collection cannot serve the spec without a migration."""
    changes: list[str] = []
    if existing.space is not None:
        changes += layout.space.differences(existing.space)
    elif existing.dimension != layout.space.dimension:
        changes.append(f"dimension {existing.dimension} -> {layout.space.dimension}")
    wanted = {f.name: f.type for f in layout.fields}
    for name, type_name in wanted.items():
        have = existing.fields.get(name)
        if have is None:
            changes.append(f"new field {name}")
        elif have != type_name:
            changes.append(f"field {name} {have} -> {type_name}")
    for name in existing.fields.keys() - wanted.keys():
        changes.append(f"field {name} removed")
    return changes


@dataclass(frozen=True)
class Assessment:
    conditions: list[ConditionUpdate]
    phase: str


def assess(layout: CollectionLayout, physical: str, observed: ObservedMilvus, plan: Plan) -> Assessment:
    """Conditions and phase from what Milvus shows after the plan's steps ran."""
    if plan.conflict is not None:
        return Assessment(
            [
                ConditionUpdate.of("Provisioned", False, plan.conflict_reason, plan.conflict),
                ConditionUpdate.of("Ready", False, plan.conflict_reason, plan.conflict),
            ],
            "Failed",
        )
    existing = observed.physicals.get(physical)
    updates: list[ConditionUpdate] = []
    if existing is None and plan.index_refused is not None:
        updates.append(ConditionUpdate.of("Provisioned", False, "IndexTypeUnsupported", plan.index_refused))
        updates.append(ConditionUpdate.of("Indexed", False, "IndexTypeUnsupported", plan.index_refused))
        updates.append(ConditionUpdate.of("Ready", False, "IndexTypeUnsupported", plan.index_refused))
        return Assessment(updates, "Failed")
    if existing is None:
        updates.append(
            ConditionUpdate.of("Provisioned", False, "CollectionMissing", f"{physical} does not exist yet")
        )
        updates.append(ConditionUpdate.of("Ready", False, "Provisioning", f"creating {physical}"))
        return Assessment(updates, "Provisioning")
    updates.append(
        ConditionUpdate.of("Provisioned", True, "CollectionCreated", f"physical collection {physical}")
    )

    index = existing.index
    index_failed = False
    if plan.index_refused is not None:
        updates.append(ConditionUpdate.of("Indexed", False, "IndexTypeUnsupported", plan.index_refused))
    elif index is None:
        updates.append(
            ConditionUpdate.of("Indexed", False, "IndexMissing", f"{physical} has no vector index yet")
        )
    elif index.state == "Failed":
        index_failed = True
        updates.append(
            ConditionUpdate.of(
                "Indexed",
                False,
                "IndexBuildFailed",
                f"Milvus failed to build {index.index_type} on {physical}:"
                f" {index.failure or 'no reason given'}; choose another index.type",
            )
        )
    elif index.state == "Finished" and index.pending_rows == 0:
        built = layout.index.describe() if not index_differs(layout, existing) else index.index_type
        updates.append(
            ConditionUpdate.of("Indexed", True, "IndexBuilt", f"{built}, {index.indexed_rows} rows")
        )
    else:
        updates.append(
            ConditionUpdate.of(
                "Indexed",
                False,
                "IndexBuilding",
                f"{index.index_type} on {physical}: {index.indexed_rows} rows indexed,"
                f" {index.pending_rows} pending",
            )
        )

    if plan.migration_required:
        updates.append(
            ConditionUpdate.of(
                "UpToDate",
                False,
                "MigrationRequired",
                f"{'; '.join(plan.migration_required)}: this changes the stored vectors, so {physical} keeps "
                "serving the old ones; apply a MigrationPlan targeting this VectorCollection to rebuild it",
            )
        )
    elif plan.index_refused is not None:
        updates.append(ConditionUpdate.of("UpToDate", False, "IndexTypeUnsupported", plan.index_refused))
    elif plan.reindex:
        updates.append(
            ConditionUpdate.of(
                "UpToDate",
                False,
                "Reindexing",
                f"{physical} keeps serving while the new index {layout.index.describe()} is built on a"
                " copy of its vectors",
            )
        )
    else:
        updates.append(ConditionUpdate.of("UpToDate", True, "SpecApplied", "Milvus matches the spec"))

    degraded_reasons = []
    if plan.lost:
        degraded_reasons.append(
            (
                "PhysicalCollectionLost",
                f"physical collection {physical} was dropped outside the operator and recreated empty:"
                " run a MigrationPlan to refill it",
            )
        )
    if index_failed:
        degraded_reasons.append(("IndexBuildFailed", f"the index of {physical} failed to build"))
    if degraded_reasons:
        updates.append(
            ConditionUpdate.of(
                "Degraded",
                True,
                degraded_reasons[0][0],
                "; ".join(message for _, message in degraded_reasons),
            )
        )
    else:
        updates.append(ConditionUpdate.of("Degraded", False, "Healthy", "nothing lost, nothing failing"))

    serving = observed.alias_target == physical and existing.loaded and not index_failed
    if serving:
        updates.append(ConditionUpdate.of("Ready", True, "Serving", f"alias serves {physical}"))
        phase = "Degraded" if degraded_reasons else "Ready"
    else:
        why = (
            "IndexBuildFailed"
            if index_failed
            else ("AliasMissing" if observed.alias_target != physical else "Loading")
        )
        updates.append(ConditionUpdate.of("Ready", False, why, f"alias does not serve {physical} yet"))
        phase = "Degraded" if degraded_reasons else "Provisioning"
    return Assessment(updates, phase)
