"""Reading test_decoding's output: which keys of the followed table a line changed, and folding lines
into whole transactions. The lines are as PostgreSQL 15 prints them (copied from a real server,
tests/integration/test_pg_logical.py runs the same against one)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vector_operator.contract.sync import slot_name
from vector_operator.sources.pg_logical import (
    ChangeFeed,
    FeedTarget,
    KeyChange,
    KeyKind,
    LineKind,
    fold_feed,
    key_kind,
    lsn_value,
    settings_problem,
)
from vector_operator.sources.pg_logical import decode_line as decode

ARTICLES = FeedTarget(frozenset({("public", "articles")}), "id", "int")


def target(schema: str, name: str, key: str, kind: KeyKind) -> FeedTarget:
    return FeedTarget(frozenset({(schema, name)}), key, kind)


def upsert(key: int | str | Decimal) -> KeyChange:
    return KeyChange(key, deleted=False)


def delete(key: int | str | Decimal) -> KeyChange:
    return KeyChange(key, deleted=True)


# -- one line ------------------------------------------------------------------------------------


def test_transaction_boundaries_with_and_without_xids_and_timestamps() -> None:
    assert decode("BEGIN", ARTICLES).kind is LineKind.BEGIN
    assert decode("BEGIN 730", ARTICLES).kind is LineKind.BEGIN
    assert decode("COMMIT", ARTICLES).kind is LineKind.COMMIT
    assert decode("COMMIT 730 (at 2024-05-01 10:00:00.1+00)", ARTICLES).kind is LineKind.COMMIT
    message = (
        "message: transactional: 1 prefix: pfx, sz: 6 content:table public.articles: DELETE: id[integer]:1"
    )
    assert decode(message, ARTICLES).kind is LineKind.OTHER


def test_an_insert_names_the_new_key_typed_as_an_integer() -> None:
    line = decode("table public.articles: INSERT: id[integer]:1 title[text]:'it''s' body[text]:'x'", ARTICLES)
    assert line.kind is LineKind.CHANGE
    assert line.changes == (upsert(1),)
    assert type(line.changes[0].key) is int
    assert not line.rescan


def test_an_update_that_keeps_the_key_names_it_once() -> None:
    line = "table public.articles: UPDATE: id[integer]:2 title[text]:'t' body[text]:unchanged-toast-datum"
    assert decode(line, ARTICLES).changes == (upsert(2),)


def test_an_update_that_changes_the_key_deletes_the_old_one_first() -> None:
    line = (
        "table public.articles: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:3"
        " title[text]:'new' body[text]:'x'"
    )
    assert decode(line, ARTICLES).changes == (delete(1), upsert(3))


def test_an_update_under_replica_identity_full_with_the_same_key_is_no_delete() -> None:
    full = target("public", "full_id", "k", "text")
    same = (
        "table public.full_id: UPDATE: old-key: k[text]:'a' v[integer]:1 new-tuple: k[text]:'a' v[integer]:2"
    )
    moved = (
        "table public.full_id: UPDATE: old-key: k[text]:'a' v[integer]:2 new-tuple: k[text]:'b' v[integer]:2"
    )
    assert decode(same, full).changes == (upsert("a"),)
    assert decode(moved, full).changes == (delete("a"), upsert("b"))
    assert decode("table public.full_id: DELETE: k[text]:'b' v[integer]:2", full).changes == (delete("b"),)


def test_a_delete_names_the_old_key() -> None:
    assert decode("table public.articles: DELETE: id[integer]:2", ARTICLES).changes == (delete(2),)


def test_text_keys_with_quotes_spaces_newlines_and_non_ascii_in_quoted_identifiers() -> None:
    mixed = target("public", "Mixed Case", "Key Col", "text")
    insert = "table public.\"Mixed Case\": INSERT: \"Key Col\"[text]:'a b''c é 日本' val[integer]:1"
    assert decode(insert, mixed).changes == (upsert("a b'c é 日本"),)
    newline = 'table public."Mixed Case": DELETE: "Key Col"[text]:\'line\nbreak\''
    assert decode(newline, mixed).changes == (delete("line\nbreak"),)
    moved = (
        "table public.\"Mixed Case\": UPDATE: old-key: \"Key Col\"[text]:'a b''c é 日本'"
        " new-tuple: \"Key Col\"[text]:'z' val[integer]:1"
    )
    assert decode(moved, mixed).changes == (delete("a b'c é 日本"), upsert("z"))
    cyrillic = target("public", "Ünï", "Ключ", "text")
    assert decode('table public."Ünï": INSERT: "Ключ"[text]:\'ж\'', cyrillic).changes == (upsert("ж"),)
    # A value that looks like the line's own syntax is only a value.
    tricky = (
        "table public.\"Mixed Case\": INSERT: \"Key Col\"[text]:' new-tuple: x[text]:''y''' val[integer]:3"
    )
    assert decode(tricky, mixed).changes == (upsert(" new-tuple: x[text]:'y'"),)


def test_schema_and_table_names_with_dots_and_keyword_names() -> None:
    odd = target("Odd.Schema", "t.x", "id", "decimal")
    assert decode('table "Odd.Schema"."t.x": DELETE: id[numeric]:1.50', odd).changes == (
        delete(Decimal("1.50")),
    )
    order = target("public", "order", "id", "int")
    assert decode('table public."order": INSERT: id[bigint]:3', order).changes == (upsert(3),)
    # The identifier's quotes matter: public.order is not public."Order".
    assert decode('table public."Order": INSERT: id[bigint]:3', order).changes == ()


def test_numeric_keys_are_decimals_and_keep_their_digits() -> None:
    prices = target("public", "prices", "id", "decimal")
    line = decode("table public.prices: INSERT: id[numeric]:-2.00 b[bytea]:null", prices)
    assert line.changes == (upsert(Decimal("-2.00")),)
    assert isinstance(line.changes[0].key, Decimal)
    assert str(line.changes[0].key) == "-2.00"


def test_uuid_keys_are_text() -> None:
    uu = target("public", "uu", "id", "text")
    line = "table public.uu: INSERT: id[uuid]:'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' t[text]:'x'"
    assert decode(line, uu).changes == (upsert("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),)


def test_the_key_is_found_after_columns_of_every_printed_form() -> None:
    order = target("public", "order", "we]ird:", "int")
    line = (
        "table public.\"order\": INSERT: id[bigint]:1 tags[text[]]:'{a,\"b c\"}' c[character]:'ab   '"
        " v[character varying]:'x' f[double precision]:NaN bo[boolean]:true bi[bit]:B'101'"
        ' t["My]Type"[]]:null big[text]:unchanged-toast-datum "we]ird:"[integer]:7'
    )
    assert decode(line, order).changes == (upsert(7),)


def test_other_tables_are_ignored_without_reading_their_columns() -> None:
    assert decode("table public.articles_old: INSERT: id[integer]:1", ARTICLES).changes == ()
    assert decode("table other.articles: DELETE: id[integer]:1", ARTICLES).changes == ()
    # Columns of another table are never parsed, so even nonsense there changes nothing.
    line = decode("table public.nokey: DELETE: (no-tuple-data)", ARTICLES)
    assert (line.kind, line.changes, line.rescan) == (LineKind.CHANGE, (), False)


def test_a_truncate_of_the_table_asks_for_a_rescan_wherever_it_is_listed() -> None:
    line = decode('table public.other, public.articles, public."Mixed Case": TRUNCATE: (no-flags)', ARTICLES)
    assert line.rescan
    assert decode("table public.articles: TRUNCATE: restart_seqs cascade", ARTICLES).rescan
    assert not decode("table public.other: TRUNCATE: (no-flags)", ARTICLES).rescan


def test_null_keys_are_rows_without_a_key() -> None:
    codes = target("public", "events", "code", "text")
    assert decode("table public.events: INSERT: code[text]:null body[text]:'x'", codes).changes == ()
    # A key set to null: the old key is gone, there is no new one.
    line = "table public.events: UPDATE: old-key: code[text]:'a' body[text]:'x' new-tuple: code[text]:null"
    assert decode(line, codes).changes == (delete("a"),)
    # A null in another column is just a value.
    assert decode("table public.articles: INSERT: id[integer]:4 title[text]:null", ARTICLES).changes == (
        upsert(4),
    )


def test_lines_whose_key_cannot_be_known_ask_for_a_rescan() -> None:
    for line in (
        "table public.articles: DELETE: (no-tuple-data)",  # REPLICA IDENTITY NOTHING
        "table public.articles: DELETE: other[integer]:1",  # an identity without the key
        "table public.articles: UPDATE: id[integer]:unchanged-toast-datum",
        "table public.articles: INSERT: id[integer]:'not a number'",
        "table public.articles: INSERT: id[integer]:1 title[text]:'unterminated",
        "table public.articles: UPSERT: id[integer]:1",
        'table public."articles: INSERT: id[integer]:1',  # a header that cannot be read
    ):
        decoded = decode(line, ARTICLES)
        assert (decoded.kind, decoded.changes, decoded.rescan) == (LineKind.CHANGE, (), True), line


def test_a_partitioned_table_follows_the_partitions_the_decoding_names() -> None:
    parts = FeedTarget(frozenset({("public", "part_1"), ("public", "part_2")}), "id", "int")
    assert decode("table public.part_2: INSERT: id[integer]:105 t[text]:'x'", parts).changes == (upsert(105),)
    assert decode("table public.part: INSERT: id[integer]:5", parts).changes == ()


# -- whole transactions --------------------------------------------------------------------------


def test_a_feed_keeps_each_keys_last_change_in_commit_order() -> None:
    rows = [
        ("0/10", "BEGIN"),
        ("0/10", "table public.articles: INSERT: id[integer]:1"),
        ("0/11", "table public.articles: INSERT: id[integer]:2"),
        ("0/12", "table public.articles: INSERT: id[integer]:3"),
        ("0/20", "COMMIT"),
        ("0/20", "BEGIN"),
        ("0/21", "table public.other: INSERT: id[integer]:9"),
        ("0/22", "table public.articles: UPDATE: id[integer]:2 title[text]:'t'"),
        ("0/30", "COMMIT"),
        ("0/30", "BEGIN"),
        ("0/31", "table public.articles: UPDATE: old-key: id[integer]:3 new-tuple: id[integer]:30"),
        ("0/32", "table public.articles: DELETE: id[integer]:1"),
        ("0/40", "COMMIT"),
    ]
    assert fold_feed(rows, ARTICLES) == ChangeFeed(
        changes=(upsert(2), delete(3), upsert(30), delete(1)),
        upto_lsn="0/40",
        truncated=False,
        transactions=3,
    )


def test_a_deleted_key_inserted_again_is_an_upsert() -> None:
    rows = [
        ("0/1", "BEGIN"),
        ("0/1", "table public.articles: DELETE: id[integer]:1"),
        ("0/2", "COMMIT"),
        ("0/2", "BEGIN"),
        ("0/3", "table public.articles: INSERT: id[integer]:1"),
        ("0/4", "COMMIT"),
    ]
    assert fold_feed(rows, ARTICLES).changes == (upsert(1),)


def test_only_whole_transactions_are_read() -> None:
    rows = [
        ("0/1", "BEGIN"),
        ("0/1", "table public.articles: INSERT: id[integer]:1"),
        ("0/2", "COMMIT"),
        ("0/3", "BEGIN"),
        ("0/3", "table public.articles: INSERT: id[integer]:2"),
        ("0/4", "table public.articles: TRUNCATE: (no-flags)"),
    ]
    feed = fold_feed(rows, ARTICLES)
    assert feed == ChangeFeed(changes=(upsert(1),), upto_lsn="0/2", truncated=False, transactions=1)


def test_transactions_of_other_tables_are_counted_and_confirmed_past() -> None:
    rows = [("0/1", "BEGIN"), ("0/1", "table public.other: INSERT: id[integer]:1"), ("0/2", "COMMIT")]
    assert fold_feed(rows, ARTICLES) == ChangeFeed(
        changes=(), upto_lsn="0/2", truncated=False, transactions=1
    )


def test_nothing_read_confirms_nothing() -> None:
    assert fold_feed([], ARTICLES) == ChangeFeed(changes=(), upto_lsn=None, truncated=False, transactions=0)


def test_a_truncate_marks_the_feed_and_keeps_the_other_changes() -> None:
    rows = [
        ("0/1", "BEGIN"),
        ("0/1", "table public.articles: INSERT: id[integer]:1"),
        ("0/2", "COMMIT"),
        ("0/3", "BEGIN"),
        ("0/3", "table public.articles, public.other: TRUNCATE: (no-flags)"),
        ("0/4", "COMMIT"),
    ]
    feed = fold_feed(rows, ARTICLES)
    assert feed.truncated
    assert feed.changes == (upsert(1),)
    assert feed.upto_lsn == "0/4"


# -- names and settings --------------------------------------------------------------------------


def test_slot_names_come_from_the_plans_uid() -> None:
    name = slot_name("5B1D2E7C-0F4A-4C55-9A39-0D0E0E7E9F11")
    assert name == "vo_5b1d2e7c0f4a4c559a390d0e0e7e9f11"
    assert len(name) <= 63
    for bad in ("", "plan name", "a" * 61, "uid;drop"):
        with pytest.raises(ValueError, match="not a Kubernetes uid"):
            slot_name(bad)


def test_settings_problems_say_what_to_change_and_that_a_restart_is_needed() -> None:
    assert settings_problem("logical", 10) is None
    replica = settings_problem("replica", 10)
    assert replica is not None
    assert "wal_level = replica" in replica
    assert "set wal_level = logical in postgresql.conf" in replica
    assert "restart" in replica
    none = settings_problem("logical", 0)
    assert none is not None
    assert "max_replication_slots" in none
    assert "restart" in none


@pytest.mark.parametrize(
    ("type_name", "kind"),
    [
        ("integer", "int"),
        ("bigint", "int"),
        ("smallint", "int"),
        ("numeric", "decimal"),
        ("text", "text"),
        ("character varying", "text"),
        ("uuid", "text"),
        ("double precision", None),
        ("timestamp with time zone", None),
        ("boolean", None),
    ],
)
def test_key_kinds_follow_the_columns_type(type_name: str, kind: KeyKind | None) -> None:
    assert key_kind(type_name) == kind


def test_lsns_compare_as_positions_not_as_text() -> None:
    assert lsn_value("0/1541D48") == 0x1541D48
    assert lsn_value("1/0") > lsn_value("0/FFFFFFFF") > lsn_value("0/A0")
    assert lsn_value("0/a0") == lsn_value("0/A0")
    for bad in ("", "1541D48", "0/", "0/1541D48; DROP TABLE x", "123456789/0"):
        with pytest.raises(ValueError, match="is not an LSN"):
            lsn_value(bad)
