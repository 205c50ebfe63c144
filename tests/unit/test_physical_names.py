"""Physical collection names behind an alias: `<alias>__v<N>`, and only those, belong to the alias."""

from __future__ import annotations

import pytest

from vector_operator.collection.physical_names import (
    next_physical_name,
    physical_collections,
    physical_name,
    version_of,
)


def test_physical_name_is_alias_and_version() -> None:
    assert physical_name("nodes", 1) == "nodes__v1"
    assert physical_name("nodes", 12) == "nodes__v12"


@pytest.mark.parametrize("version", [0, -1])
def test_versions_start_at_one(version: int) -> None:
    with pytest.raises(ValueError, match="start at 1"):
        physical_name("nodes", version)


@pytest.mark.parametrize(
    ("alias", "name", "version"),
    [
        ("a", "a__v1", 1),
        ("a", "a__v10", 10),
        ("a", "a__v999999999", 999999999),
        ("a__v1", "a__v1__v2", 2),  # an alias that itself looks versioned
        ("nodes_2", "nodes_2__v3", 3),
    ],
)
def test_version_of_a_physical_collection(alias: str, name: str, version: int) -> None:
    assert version_of(alias, name) == version


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("a", "a"),  # the alias's own name is not one of its physical collections
        ("a", "a__v"),
        ("a", "a__v0"),  # versions start at 1
        ("a", "a__v01"),  # no leading zeros: a__v01 and a__v1 would be the same version
        ("a", "a__v1x"),
        ("a", "a__v1__v2"),  # a physical collection of the alias a__v1, not of a
        ("a", "a__v-1"),
        ("a", "ab__v1"),  # another alias that starts with the same letters
        ("ab", "a__v1"),
        ("a", "xa__v1"),
        ("a", "A__v1"),  # Milvus names are case-sensitive
        ("a", "a__V1"),
        ("a", "a__v1 "),
        ("a", "a__v1\n"),
        ("a", "a__v1234567890"),  # more digits than any version the operator makes
        # Milvus names never hold regex characters, but an alias is escaped all the same.
        ("a.b", "axb__v1"),
        ("a+", "aa__v1"),
        ("(a|b)", "b__v1"),
        ("a*", "__v1"),
    ],
)
def test_names_that_are_not_the_aliases_physical_collections(alias: str, name: str) -> None:
    assert version_of(alias, name) is None


def test_regex_characters_in_the_alias_match_only_themselves() -> None:
    assert version_of("a.b", "a.b__v2") == 2
    assert version_of("(a|b)", "(a|b)__v3") == 3


def test_physical_collections_are_the_aliases_own_oldest_first_by_number() -> None:
    names = ["a__v10", "a", "a__v2", "ab__v1", "b__v1", "a__v01", "a__v1", "a__v1__v5"]
    assert physical_collections("a", names) == ["a__v1", "a__v2", "a__v10"]
    assert physical_collections("a", []) == []


def test_next_physical_name_is_one_above_the_highest() -> None:
    assert next_physical_name("a", []) == "a__v1"
    assert next_physical_name("a", ["a", "ab__v7", "a__v01"]) == "a__v1"
    assert next_physical_name("a", ["a__v1"]) == "a__v2"
    # A gap (v2 dropped by a rollback) is never refilled: versions only grow.
    assert next_physical_name("a", ["a__v3", "a__v1"]) == "a__v4"
    assert next_physical_name("a", iter(["a__v9", "a__v10"])) == "a__v11"
