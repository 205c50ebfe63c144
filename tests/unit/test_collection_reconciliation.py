"""What the operator changes in Milvus for a VectorCollection, and what it reports, decided from
what it observed: the pure half of the reconcile (the adapter applies the steps)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.index_support import IndexSupport
from vector_operator.collection.milvus_layout import (
    CollectionLayout,
    IndexLayout,
    VectorSpace,
    layout_of,
)
from vector_operator.collection.ownership import Claim, Owner, claim
from vector_operator.collection.reconciliation import (
    Assessment,
    BuildIndex,
    ClaimOwnership,
    CreateCollection,
    LoadCollection,
    ObservedIndex,
    ObservedMilvus,
    ObservedPhysical,
    Plan,
    PointAlias,
    assess,
    choose_physical,
    plan_reconciliation,
    serving_layout,
)

ALIAS = "nodes"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ME = Owner("search", "nodes", "uid-1")


def spec(**changes: Any) -> VectorCollectionSpec:
    raw: dict[str, Any] = {
        "collectionName": ALIAS,
        "dimension": 16,
        "metricType": "L2",
        "index": {"type": "IVF_SQ8", "params": {"nlist": 16}},
        "searchParams": {"nprobe": 4},
        "fields": [{"name": "source_table", "type": "VARCHAR", "maxLength": 64}],
        "embedding": {"model": MODEL},
    }
    raw.update(changes)
    return VectorCollectionSpec.model_validate(raw)


def layout(**changes: Any) -> CollectionLayout:
    return layout_of(spec(**changes))


LAYOUT = layout()


def physical(
    name: str,
    of: CollectionLayout = LAYOUT,
    *,
    index_state: str | None = "Finished",
    fingerprint: str | None = "same",
    loaded: bool = True,
    **changes: Any,
) -> ObservedPhysical:
    """A physical collection as the operator builds it for `of`: its space property, its fields,
    its index (in `index_state`; None: no index) with the fingerprint of `of` ("same")."""
    index = (
        ObservedIndex("vector", of.index.index_type, of.index.metric, index_state, indexed_rows=10)
        if index_state is not None
        else None
    )
    observed = ObservedPhysical(
        name=name,
        dimension=of.space.dimension,
        space=of.space,
        fields={f.name: f.type for f in of.fields},
        index=index,
        index_fingerprint=of.index.fingerprint if fingerprint == "same" else fingerprint,
        loaded=loaded,
        owner=ME,
    )
    return dataclasses.replace(observed, **changes)


def milvus(*physicals: ObservedPhysical, alias_target: str | None = None) -> ObservedMilvus:
    return ObservedMilvus({p.name: p for p in physicals}, alias_target)


def reasons(plan: Plan) -> list[str]:
    return [notice.reason for notice in plan.notices]


# -- which physical collection serves ------------------------------------------------------------


def test_choose_physical_prefers_the_alias_target_then_the_record_then_the_newest_then_v1() -> None:
    v1, v2, v3 = physical("nodes__v1"), physical("nodes__v2"), physical("nodes__v3")
    # The alias target wins (a MigrationPlan may just have swung it), even over the record.
    assert choose_physical(ALIAS, "nodes__v1", milvus(v1, v2, v3, alias_target="nodes__v2")) == "nodes__v2"
    # Without an alias on one of ours: what the status records, if it exists.
    assert choose_physical(ALIAS, "nodes__v1", milvus(v1, v2, v3)) == "nodes__v1"
    assert choose_physical(ALIAS, "nodes__v1", milvus(v1, v3, alias_target="elsewhere")) == "nodes__v1"
    # Nothing recorded (or the record is gone): the newest of ours.
    assert choose_physical(ALIAS, None, milvus(v1, v3)) == "nodes__v3"
    assert choose_physical(ALIAS, "nodes__v2", milvus(v1, v3)) == "nodes__v3"
    # Nothing of ours at all: the recorded name (recreated), else a first version.
    assert choose_physical(ALIAS, "nodes__v2", milvus()) == "nodes__v2"
    assert choose_physical(ALIAS, None, milvus(alias_target="elsewhere")) == "nodes__v1"


# -- plans ---------------------------------------------------------------------------------------


def test_nothing_exists_creates_loads_and_points_a_new_alias() -> None:
    plan = plan_reconciliation(LAYOUT, ALIAS, None, milvus(), ME)
    assert plan.physical == "nodes__v1"
    assert plan.steps == [
        CreateCollection("nodes__v1", ME),
        LoadCollection("nodes__v1"),
        PointAlias("nodes__v1", exists=False),
    ]
    assert reasons(plan) == ["CollectionCreated", "AliasCreated"]
    assert not any(notice.warning for notice in plan.notices)
    assert "IVF_SQ8/L2 (nlist=16)" in plan.notices[0].message
    assert not plan.lost
    assert plan.migration_required == []


def test_everything_as_declared_needs_no_step() -> None:
    observed = milvus(physical("nodes__v1"), alias_target="nodes__v1")
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", observed, ME)
    assert plan == Plan("nodes__v1")


def test_missing_alias_on_a_recorded_collection_is_repaired_with_a_warning() -> None:
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", milvus(physical("nodes__v1")), ME)
    assert plan.steps == [PointAlias("nodes__v1", exists=False)]
    [notice] = plan.notices
    assert (notice.reason, notice.warning) == ("AliasRepaired", True)
    assert "was missing" in notice.message


def test_missing_alias_on_a_collection_never_recorded_is_created() -> None:
    """E.g. a VectorCollection re-applied over collections a Retain deletion left in Milvus."""
    plan = plan_reconciliation(LAYOUT, ALIAS, None, milvus(physical("nodes__v1"), physical("nodes__v2")), ME)
    assert plan.physical == "nodes__v2"
    assert plan.steps == [PointAlias("nodes__v2", exists=False)]
    [notice] = plan.notices
    assert (notice.reason, notice.warning) == ("AliasCreated", False)


def test_alias_pointing_at_a_foreign_collection_is_pointed_back() -> None:
    observed = milvus(physical("nodes__v1"), alias_target="someone_elses")
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", observed, ME)
    assert plan.steps == [PointAlias("nodes__v1", exists=True)]
    [notice] = plan.notices
    assert (notice.reason, notice.warning) == ("AliasRepaired", True)
    assert "someone_elses" in notice.message
    assert "nodes__v1 again" in notice.message


def test_alias_swung_to_a_newer_version_of_ours_is_adopted_not_reverted() -> None:
    """A MigrationPlan cut over to nodes__v2: the operator follows the alias."""
    observed = milvus(physical("nodes__v1"), physical("nodes__v2"), alias_target="nodes__v2")
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", observed, ME)
    assert plan.physical == "nodes__v2"
    assert plan.steps == []
    assert plan.notices == []
    # ... and equally after a rollback swung it back to an older version.
    rolled_back = milvus(physical("nodes__v1"), physical("nodes__v2"), alias_target="nodes__v1")
    assert plan_reconciliation(LAYOUT, ALIAS, "nodes__v2", rolled_back, ME) == Plan("nodes__v1")


def test_recorded_collection_dropped_behind_the_operators_back_is_recreated_and_reported_lost() -> None:
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v3", milvus(), ME)
    assert plan.physical == "nodes__v3"  # the same name: the alias and the record stay true
    assert plan.steps == [
        CreateCollection("nodes__v3", ME),
        LoadCollection("nodes__v3"),
        PointAlias("nodes__v3", exists=False),
    ]
    assert plan.lost
    lost = plan.notices[0]
    assert (lost.reason, lost.warning) == ("PhysicalCollectionLost", True)
    assert "run a MigrationPlan to refill it" in lost.message
    assert "CollectionCreated" not in reasons(plan)


def test_an_index_change_on_the_serving_collection_is_a_reindex_never_a_rebuild_in_place() -> None:
    nlist_64 = layout(index={"type": "IVF_SQ8", "params": {"nlist": 64}})
    assert nlist_64.index.fingerprint != LAYOUT.index.fingerprint
    observed = milvus(physical("nodes__v1"), alias_target="nodes__v1")  # built for nlist 16, serving
    plan = plan_reconciliation(nlist_64, ALIAS, "nodes__v1", observed, ME)
    assert plan.reindex
    assert plan.steps == []  # nothing released, nothing dropped: the alias keeps serving
    assert plan.migration_required == []
    up_to_date = next(
        u for u in assess(nlist_64, "nodes__v1", observed, plan).conditions if u.type == "UpToDate"
    )
    assert (up_to_date.status, up_to_date.reason) == ("False", "Reindexing")


def test_an_index_change_on_a_collection_the_alias_does_not_serve_is_rebuilt_in_place() -> None:
    nlist_64 = layout(index={"type": "IVF_SQ8", "params": {"nlist": 64}})
    observed = milvus(physical("nodes__v1"), alias_target=None)
    plan = plan_reconciliation(nlist_64, ALIAS, "nodes__v1", observed, ME)
    assert not plan.reindex
    assert plan.steps[:2] == [BuildIndex("nodes__v1", replace="vector"), LoadCollection("nodes__v1")]
    assert reasons(plan)[0] == "IndexRebuilding"
    assert "nlist=64" in plan.notices[0].message


def test_search_params_alone_change_nothing_in_milvus() -> None:
    observed = milvus(physical("nodes__v1"), alias_target="nodes__v1")
    hnsw = layout(index={"type": "HNSW", "params": {"M": 8, "efConstruction": 64}}, searchParams={"ef": 32})
    assert plan_reconciliation(hnsw, ALIAS, "nodes__v1", observed, ME).reindex
    # searchParams are applied at query time: nothing to rebuild.
    nprobe = layout(searchParams={"nprobe": 32})
    plan = plan_reconciliation(nprobe, ALIAS, "nodes__v1", observed, ME)
    assert plan.steps == []
    assert not plan.reindex


def test_without_the_operators_fingerprint_only_type_and_metric_are_compared() -> None:
    """A collection indexed by someone else: Milvus may not report parameters, so only what it
    does report (type and metric) can decide a re-index."""
    foreign_index = physical("nodes__v1", fingerprint=None)
    observed = milvus(foreign_index, alias_target="nodes__v1")
    nlist_64 = layout(index={"type": "IVF_SQ8", "params": {"nlist": 64}})
    plan = plan_reconciliation(nlist_64, ALIAS, "nodes__v1", observed, ME)
    assert (plan.steps, plan.reindex) == ([], False)

    hnsw = layout(index={"type": "HNSW", "params": {"M": 8}})
    assert plan_reconciliation(hnsw, ALIAS, "nodes__v1", observed, ME).reindex


LITE = IndexSupport(
    server="milvus_lite-3.2.2",
    built=frozenset({"FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "AUTOINDEX"}),
    refused={"IVF_PQ": "index_type='IVF_PQ' is reserved for a future phase", "DISKANN": "unknown"},
)


def test_an_index_type_the_server_does_not_build_is_refused_naming_the_alternatives() -> None:
    pq = layout(index={"type": "IVF_PQ", "params": {"nlist": 16, "m": 4}}, searchParams={"nprobe": 4})
    plan = plan_reconciliation(pq, ALIAS, None, milvus(), ME, LITE)
    assert plan.steps == []  # nothing is created with an index that would only pretend to exist
    assert plan.index_refused is not None
    assert "Milvus milvus_lite-3.2.2 does not build index type IVF_PQ" in plan.index_refused
    assert "reserved for a future phase" in plan.index_refused
    assert "choose one of AUTOINDEX, FLAT, HNSW, IVF_FLAT, IVF_SQ8" in plan.index_refused
    assessment = assess(pq, plan.physical, milvus(), plan)
    assert {(u.type, u.status, u.reason) for u in assessment.conditions} == {
        ("Provisioned", "False", "IndexTypeUnsupported"),
        ("Indexed", "False", "IndexTypeUnsupported"),
        ("Ready", "False", "IndexTypeUnsupported"),
    }

    # A serving collection asked to change to it keeps its index and serves on.
    observed = milvus(physical("nodes__v1"), alias_target="nodes__v1")
    plan = plan_reconciliation(pq, ALIAS, "nodes__v1", observed, ME, LITE)
    assert (plan.steps, plan.reindex) == ([], False)
    conditions = {u.type: u for u in assess(pq, "nodes__v1", observed, plan).conditions}
    assert conditions["UpToDate"].reason == "IndexTypeUnsupported"
    assert conditions["Indexed"].reason == "IndexTypeUnsupported"
    assert conditions["Ready"].status == "True"


def test_index_support_splits_the_types_a_study_may_use() -> None:
    assert LITE.usable(["HNSW", "IVF_PQ", "IVF_SQ8"]) == (["HNSW", "IVF_SQ8"], ["IVF_PQ"])
    assert LITE.refusal("HNSW") is None


def test_a_collection_without_an_index_gets_one() -> None:
    observed = milvus(physical("nodes__v1", index_state=None, fingerprint=None), alias_target="nodes__v1")
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", observed, ME)
    assert plan.steps == [BuildIndex("nodes__v1"), LoadCollection("nodes__v1")]
    assert reasons(plan) == ["IndexCreating"]


def test_a_collection_not_loaded_is_loaded() -> None:
    observed = milvus(physical("nodes__v1", loaded=False), alias_target="nodes__v1")
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", observed, ME)
    assert plan.steps == [LoadCollection("nodes__v1")]
    assert plan.notices == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"dimension": 32}, ["dimension 16 -> 32"]),
        ({"metricType": "IP"}, ["metricType L2 -> IP"]),
        ({"embedding": {"model": "acme/other-model"}}, [f"embedding.model {MODEL} -> acme/other-model"]),
        ({"primaryKey": {"type": "VARCHAR"}}, ["primaryKey.type INT64 -> VARCHAR"]),
        (
            {
                "fields": [
                    {"name": "source_table", "type": "VARCHAR", "maxLength": 64},
                    {"name": "year", "type": "INT32"},
                ]
            },
            ["new field year"],
        ),
        ({"fields": [{"name": "source_table", "type": "INT64"}]}, ["field source_table VARCHAR -> INT64"]),
        ({"fields": []}, ["field source_table removed"]),
        (
            {"dimension": 32, "metricType": "COSINE", "index": {"type": "HNSW", "params": {"M": 8}}},
            ["dimension 16 -> 32", "metricType L2 -> COSINE"],
        ),
    ],
)
def test_a_vector_space_change_requires_a_migration_and_changes_nothing(
    changes: dict[str, Any], expected: list[str]
) -> None:
    observed = milvus(physical("nodes__v1"), alias_target="nodes__v1")
    plan = plan_reconciliation(layout(**changes), ALIAS, "nodes__v1", observed, ME)
    assert plan.migration_required == expected
    # No index rebuild, no new collection: the old vectors keep serving until a MigrationPlan.
    assert plan.steps == []
    assert plan.physical == "nodes__v1"


def test_a_vector_space_change_still_loads_a_released_collection() -> None:
    observed = milvus(physical("nodes__v1", loaded=False), alias_target="nodes__v1")
    plan = plan_reconciliation(layout(dimension=32), ALIAS, "nodes__v1", observed, ME)
    assert plan.steps == [LoadCollection("nodes__v1")]


def test_without_the_space_property_the_dimension_still_requires_a_migration() -> None:
    """A collection the operator did not create (or whose property is unreadable): the schema's
    dimension is all there is to compare."""
    foreign = physical("nodes__v1", space=None)
    observed = milvus(foreign, alias_target="nodes__v1")
    assert plan_reconciliation(layout(dimension=32), ALIAS, "nodes__v1", observed, ME).migration_required == [
        "dimension 16 -> 32"
    ]
    assert (
        plan_reconciliation(layout(metricType="IP"), ALIAS, "nodes__v1", observed, ME).migration_required
        == []
    )


def test_the_space_property_round_trips_and_rejects_what_is_not_ours() -> None:
    space = VectorSpace(384, "COSINE", MODEL, "VARCHAR")
    assert VectorSpace.from_property(space.to_property()) == space
    assert VectorSpace.from_property("") is None
    assert VectorSpace.from_property("[1, 2]") is None
    assert VectorSpace.from_property('{"managedBy": "someone-else", "dimension": 384}') is None
    assert VectorSpace.from_property('{"managedBy": "vector-operator", "dimension": 384}') is None


def test_index_fingerprint_depends_on_type_metric_and_params_not_their_order() -> None:
    base = IndexLayout("HNSW", "L2", {"M": 8, "efConstruction": 64})
    assert base.fingerprint == IndexLayout("HNSW", "L2", {"efConstruction": 64, "M": 8}).fingerprint
    others = [
        IndexLayout("HNSW", "IP", {"M": 8, "efConstruction": 64}),
        IndexLayout("HNSW", "L2", {"M": 16, "efConstruction": 64}),
        IndexLayout("HNSW", "L2", {"M": 8}),
        IndexLayout("IVF_FLAT", "L2", {"M": 8, "efConstruction": 64}),
    ]
    assert len({base.fingerprint, *(o.fingerprint for o in others)}) == 5


# -- conditions and phase -------------------------------------------------------------------------


def conditions(assessment: Assessment) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in assessment.conditions}


def message(assessment: Assessment, type_: str) -> str:
    return next(c.message for c in assessment.conditions if c.type == type_)


def assess_one(
    observed_physical: ObservedPhysical | None,
    *,
    alias_target: str | None = "nodes__v1",
    plan: Plan | None = None,
) -> Assessment:
    observed = milvus(*([observed_physical] if observed_physical else []), alias_target=alias_target)
    return assess(LAYOUT, "nodes__v1", observed, plan or Plan("nodes__v1"))


def test_serving_as_declared_is_ready() -> None:
    assessment = assess_one(physical("nodes__v1"))
    assert conditions(assessment) == {
        "Provisioned": ("True", "CollectionCreated"),
        "Indexed": ("True", "IndexBuilt"),
        "UpToDate": ("True", "SpecApplied"),
        "Degraded": ("False", "Healthy"),
        "Ready": ("True", "Serving"),
    }
    assert assessment.phase == "Ready"
    assert "10 rows" in message(assessment, "Indexed")


def test_a_collection_not_there_yet_is_provisioning() -> None:
    assessment = assess_one(None, alias_target=None)
    assert conditions(assessment) == {
        "Provisioned": ("False", "CollectionMissing"),
        "Ready": ("False", "Provisioning"),
    }
    assert assessment.phase == "Provisioning"


@pytest.mark.parametrize("state", ["InProgress", "Pending", "Unissued", ""])
def test_an_index_still_building_is_not_indexed_but_may_serve(state: str) -> None:
    building = physical("nodes__v1", index=ObservedIndex("vector", "IVF_SQ8", "L2", state, 4, 6))
    assessment = assess_one(building)
    assert conditions(assessment)["Indexed"] == ("False", "IndexBuilding")
    assert "4 rows indexed, 6 pending" in message(assessment, "Indexed")
    # Milvus serves a loaded collection while its index builds (brute force on the rest).
    assert conditions(assessment)["Ready"] == ("True", "Serving")


def test_a_finished_index_with_rows_pending_is_still_building() -> None:
    growing = physical("nodes__v1", index=ObservedIndex("vector", "IVF_SQ8", "L2", "Finished", 100, 20))
    assert conditions(assess_one(growing))["Indexed"] == ("False", "IndexBuilding")


def test_a_failed_index_build_is_degraded_and_not_ready() -> None:
    failed = physical(
        "nodes__v1", index=ObservedIndex("vector", "IVF_PQ", "L2", "Failed", failure="m must divide dim")
    )
    assessment = assess_one(failed)
    got = conditions(assessment)
    assert got["Indexed"] == ("False", "IndexBuildFailed")
    assert "m must divide dim" in message(assessment, "Indexed")
    assert "choose another index.type" in message(assessment, "Indexed")
    assert got["Degraded"] == ("True", "IndexBuildFailed")
    assert got["Ready"] == ("False", "IndexBuildFailed")
    assert assessment.phase == "Degraded"


def test_a_failed_build_without_a_reason_says_so() -> None:
    failed = physical("nodes__v1", index=ObservedIndex("vector", "IVF_PQ", "L2", "Failed"))
    assert "no reason given" in message(assess_one(failed), "Indexed")


def test_no_index_is_reported_as_missing() -> None:
    assessment = assess_one(physical("nodes__v1", index_state=None))
    assert conditions(assessment)["Indexed"] == ("False", "IndexMissing")


def test_a_released_collection_is_loading() -> None:
    assessment = assess_one(physical("nodes__v1", loaded=False))
    assert conditions(assessment)["Ready"] == ("False", "Loading")
    assert assessment.phase == "Provisioning"


@pytest.mark.parametrize("alias_target", [None, "someone_elses", "nodes__v2"])
def test_an_alias_not_serving_the_collection_is_not_ready(alias_target: str | None) -> None:
    assessment = assess_one(physical("nodes__v1"), alias_target=alias_target)
    assert conditions(assessment)["Ready"] == ("False", "AliasMissing")
    assert assessment.phase == "Provisioning"


def test_a_lost_collection_serves_again_but_is_degraded() -> None:
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", milvus(), ME)
    assessment = assess_one(physical("nodes__v1"), plan=plan)
    got = conditions(assessment)
    assert got["Degraded"] == ("True", "PhysicalCollectionLost")
    assert "run a MigrationPlan to refill it" in message(assessment, "Degraded")
    assert got["Ready"] == ("True", "Serving")
    assert assessment.phase == "Degraded"


def test_lost_and_failed_together_name_both() -> None:
    plan = plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", milvus(), ME)
    failed = physical("nodes__v1", index=ObservedIndex("vector", "IVF_SQ8", "L2", "Failed"))
    assessment = assess_one(failed, plan=plan)
    assert conditions(assessment)["Degraded"] == ("True", "PhysicalCollectionLost")
    assert "failed to build" in message(assessment, "Degraded")
    assert "was dropped outside the operator" in message(assessment, "Degraded")


def test_a_required_migration_is_not_up_to_date_and_keeps_serving() -> None:
    wider = layout(dimension=32)
    observed = milvus(physical("nodes__v1"), alias_target="nodes__v1")
    plan = plan_reconciliation(wider, ALIAS, "nodes__v1", observed, ME)
    assessment = assess(wider, "nodes__v1", observed, plan)
    got = conditions(assessment)
    assert got["UpToDate"] == ("False", "MigrationRequired")
    text = message(assessment, "UpToDate")
    assert text.startswith("dimension 16 -> 32: ")
    assert "apply a MigrationPlan" in text
    assert got["Ready"] == ("True", "Serving")
    assert got["Degraded"] == ("False", "Healthy")
    assert assessment.phase == "Ready"


# -- how the serving collection is searched -----------------------------------------------------------


def test_the_serving_collection_is_probed_in_its_own_dimension_and_metric_while_a_migration_waits() -> None:
    """Canary queries in the spec's new dimension would fail on the collection that still serves
    (and mark it unavailable) until a MigrationPlan rebuilds it."""
    serving = physical("nodes__v1")  # 16 dimensions, L2
    wanted = layout(dimension=32, metricType="IP", searchParams={"nprobe": 8})
    probe = serving_layout(wanted, serving)
    assert (probe.space.dimension, probe.space.metric) == (16, "L2")
    assert probe.search_request() == {"metric_type": "L2", "params": {"nprobe": 8}}


def test_the_serving_collection_is_probed_as_declared_when_it_matches() -> None:
    assert serving_layout(LAYOUT, physical("nodes__v1")) == LAYOUT


def test_a_foreign_collection_is_probed_with_what_milvus_reports() -> None:
    no_index = physical("nodes__v1", index_state=None, space=VectorSpace(16, "COSINE", MODEL, "INT64"))
    assert serving_layout(LAYOUT, no_index).space.metric == "COSINE"
    unknown = physical("nodes__v1", index_state=None, space=None)
    assert serving_layout(layout(metricType="IP"), unknown).space.metric == "IP"


def test_a_new_collection_never_takes_over_an_alias_that_serves_another_collection() -> None:
    from vector_operator.collection.reconciliation import ObservedMilvus, assess, plan_reconciliation

    observed = ObservedMilvus(physicals={}, alias_target="someone_elses_collection")
    plan = plan_reconciliation(LAYOUT, ALIAS, None, observed, ME)
    assert plan.steps == []
    assert plan.conflict is not None
    assert "already points at someone_elses_collection" in plan.conflict
    assessment = assess(LAYOUT, plan.physical, observed, plan)
    assert assessment.phase == "Failed"
    assert {(u.type, u.status, u.reason) for u in assessment.conditions} == {
        ("Provisioned", "False", "AliasInUse"),
        ("Ready", "False", "AliasInUse"),
    }


# -- ownership -----------------------------------------------------------------------------------


def test_a_collection_another_vectorcollection_owns_is_never_touched() -> None:
    """Two namespaces declare the same collectionName on one Milvus: the second changes nothing."""
    theirs = Owner("team-a", "nodes", "uid-a")
    observed = milvus(physical("nodes__v1", owner=theirs), alias_target="nodes__v1")
    plan = plan_reconciliation(LAYOUT, ALIAS, None, observed, ME)
    assert plan.steps == []
    assert plan.conflict_reason == "Conflict"
    assert plan.conflict is not None
    assert "nodes__v1 belong to VectorCollection team-a/nodes" in plan.conflict
    assessment = assess(LAYOUT, plan.physical, observed, plan)
    assert {(u.type, u.status, u.reason) for u in assessment.conditions} == {
        ("Provisioned", "False", "Conflict"),
        ("Ready", "False", "Conflict"),
    }
    assert assessment.phase == "Failed"
    # Even one foreign collection among ours: nothing changes (no repair of the alias either).
    mixed = milvus(physical("nodes__v1"), physical("nodes__v2", owner=theirs))
    assert plan_reconciliation(LAYOUT, ALIAS, "nodes__v1", mixed, ME).steps == []


def test_the_same_vectorcollection_recreated_or_an_unrecorded_one_is_adopted() -> None:
    recreated = Owner("search", "nodes", "uid-old")  # deleted with Retain, applied again: a new uid
    assert claim(recreated, True, ME) is Claim.ADOPT
    assert claim(None, True, ME) is Claim.ADOPT  # made by this operator before owners were recorded
    assert claim(None, False, ME) is Claim.FOREIGN  # not made by this operator at all
    assert claim(ME, True, ME) is Claim.MINE
    observed = milvus(physical("nodes__v1", owner=recreated), physical("nodes__v2", owner=None))
    plan = plan_reconciliation(LAYOUT, ALIAS, None, observed, ME)
    assert plan.conflict is None
    assert plan.steps[:2] == [ClaimOwnership("nodes__v1", ME), ClaimOwnership("nodes__v2", ME)]
    assert reasons(plan)[:2] == ["Adopted", "Adopted"]
    assert Owner.from_property(ME.to_property()) == ME
    assert Owner.from_property("not json") is None
