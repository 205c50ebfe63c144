"""A PostgreSQL change feed through logical decoding, for continuous sync: which keys of one table
changed since the last confirmed position.

The plan owns a logical replication slot (:func:`create_slot`, :func:`drop_slot`) that decodes
with ``test_decoding``, the output plugin of PostgreSQL's contrib modules (in Debian's package and
the usual managed services), read through SQL functions: no replication-protocol connection, so
the source user needs the REPLICATION attribute and nothing else. The worker peeks the changes
(:func:`peek_changes`: the slot does not move), applies them, then confirms (:func:`confirm`: the
slot advances past them). A worker that dies between the two reads the same changes again:
at-least-once, which is safe because only KEYS come out of the decoding: the worker re-reads the
current rows by key afterwards, and a key whose row is gone is a delete. So a change applied
twice, or late, converges to the table as it is.

Only whole transactions are ever returned and confirmed: the LSN to confirm is the end of the last
commit read, never a position inside a transaction. Changes of other tables are decoded too (a slot
follows the whole database); they are skipped here and moved past by the same confirm.

A leftover slot keeps the server's WAL forever (the disk fills): the plan drops its slot when it
goes away. Parsing one line of ``test_decoding`` output is the pure :func:`decode_line`, folding
lines into a feed the pure :func:`fold_feed`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.sql_engine import TableRef, Timeouts, first_line, open_engine, source_error

PLUGIN = "test_decoding"
PEEK_PAGE = 500
"""Rows fetched at a time while peeking: one decoded row holds a whole table row, TOAST included."""

FeedKey = int | str | Decimal
"""A changed row's key, typed as the key column: integers as int, NUMERIC as Decimal, text as str."""

KeyKind = Literal["int", "decimal", "text"]

_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint", "oid"})
_TEXT_TYPES = frozenset({"text", "character varying", "character", "name", "uuid", "citext"})
_SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


class LogicalDecodingUnavailable(SourceMisconfigured):
    """The source cannot feed changes by logical decoding as configured (not PostgreSQL, wal_level
    below logical, no REPLICATION attribute, no free slot, a key the decoding does not name); the
    message says what to change on the server or in the spec."""


class SlotMissing(SourceMisconfigured):
    """The plan's replication slot is gone (dropped by hand, or never created): the changes since
    it went are lost, so the table has to be synced whole again after :func:`create_slot`."""


# -- names and settings (pure) -------------------------------------------------------------------


def _check_slot(slot: str) -> None:
    if not _SLOT_NAME.fullmatch(slot):
        raise ValueError(f"{slot!r} is not a replication slot name: lowercase letters, digits, _, at most 63")


WAL_LEVEL_FIX = (
    "set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart"
    " the server"
)


def settings_problem(wal_level: str, max_replication_slots: int) -> str | None:
    """What to change in the server's settings before a logical slot can exist, or None. Both
    settings only change with a restart, which is why the message says so."""
    if wal_level != "logical":
        return (
            f"logical decoding needs wal_level = logical and the source server has wal_level = {wal_level}:"
            f" {WAL_LEVEL_FIX}"
        )
    if max_replication_slots < 1:
        return (
            "the source server allows no replication slots (max_replication_slots = 0): set"
            " max_replication_slots to at least 1 per plan in postgresql.conf and restart the server"
        )
    return None


def lsn_value(lsn: str) -> int:
    """A WAL position as PostgreSQL writes it ('16/B374D848': the high and low 32 bits in hex) as
    a number, so that positions compare in order."""
    if not _LSN.fullmatch(lsn):
        raise ValueError(f"{lsn!r} is not an LSN (like 0/16B3748)")
    high, _, low = lsn.partition("/")
    return int(high, 16) << 32 | int(low, 16)


def key_kind(type_name: str) -> KeyKind | None:
    """How keys of a column of type ``type_name`` (as ``format_type`` names it, without a type
    modifier) are typed, or None for a type whose keys the feed does not follow (the planner refuses
    them too: a float or time key has no exact value)."""
    if type_name in _INTEGER_TYPES:
        return "int"
    if type_name == "numeric":
        return "decimal"
    if type_name in _TEXT_TYPES:
        return "text"
    return None


# -- one line of test_decoding output (pure) -----------------------------------------------------


@dataclass(frozen=True)
class KeyChange:
    """A key whose row changed: re-read the row by key. ``deleted``: the key's last change read
    removed it (a DELETE, or the old key of an UPDATE that changed the key); a transaction not read
    yet may bring it back, and the next feed then names it again."""

    key: FeedKey
    deleted: bool


@dataclass(frozen=True)
class FeedTarget:
    """What the feed follows: the relations whose changes count (the table, or the leaf partitions
    of a partitioned table: the decoding names the partition a row is in, never its parent), as
    (schema, name) pairs, and the key column and how its values are typed."""

    relations: frozenset[tuple[str, str]]
    key: str
    kind: KeyKind


class LineKind(enum.Enum):
    BEGIN = "begin"
    COMMIT = "commit"
    CHANGE = "change"
    """a row change or TRUNCATE, of any table"""
    OTHER = "other"
    """a logical message, or a line this module does not know"""


@dataclass(frozen=True)
class DecodedLine:
    """One line of output as far as the feed cares: its kind and, for a change of the target, the
    keys it changed. ``rescan`` says the keys cannot be known from the line (a TRUNCATE, a DELETE
    that does not carry the key, a line that cannot be parsed): the whole table has to be checked."""

    kind: LineKind
    changes: tuple[KeyChange, ...] = ()
    rescan: bool = False


class _Toast(enum.Enum):
    UNCHANGED = "unchanged-toast-datum"


Datum = str | None | _Toast
"""A column's value as test_decoding prints it: the type's output text, None for null, or
UNCHANGED for an out-of-line value an UPDATE did not touch (test_decoding does not print those)."""


class _Unparsable(ValueError):
    pass


class _Scanner:
    """Reads test_decoding's text: identifiers as quote_identifier writes them (bare, or in double
    quotes with "" for a quote), literals as print_literal writes them (bare numbers and booleans,
    or in single quotes with '' for a quote, B'...' for bit strings)."""

    def __init__(self, text: str, position: int = 0) -> None:
        self.text = text
        self.position = position

    def at_end(self) -> bool:
        return self.position >= len(self.text)

    def startswith(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.position)

    def expect(self, literal: str) -> None:
        if not self.startswith(literal):
            raise _Unparsable(f"expected {literal!r} at {self.position}")
        self.position += len(literal)

    def identifier(self) -> str:
        text, start = self.text, self.position
        if text.startswith('"', start):
            parts: list[str] = []
            position = start + 1
            while True:
                end = text.find('"', position)
                if end < 0:
                    raise _Unparsable("unterminated quoted identifier")
                parts.append(text[position:end])
                if text.startswith('"', end + 1):
                    parts.append('"')
                    position = end + 2
                    continue
                self.position = end + 1
                return "".join(parts)
        match = _BARE_IDENTIFIER.match(text, start)
        if match is None:
            raise _Unparsable(f"expected an identifier at {start}")
        self.position = match.end()
        return match.group()

    def type_name(self) -> str:
        """A type as format_type_be writes it, up to the closing ']': it may hold quoted
        identifiers and array brackets ('text[]', '"My Type"[]')."""
        text, start = self.text, self.position
        position = start
        while position < len(text):
            if text.startswith("[]", position):
                position += 2
            elif text[position] == '"':
                self.position = position
                self.identifier()
                position = self.position
            elif text[position] == "]":
                self.position = position
                return text[start:position]
            else:
                position += 1
        raise _Unparsable("unterminated type name")

    def quoted(self) -> str:
        match = _QUOTED.match(self.text, self.position)
        if match is None:
            raise _Unparsable(f"unterminated literal at {self.position}")
        self.position = match.end()
        return match.group(1).replace("''", "'")

    def datum(self) -> Datum:
        if self.startswith("'"):
            return self.quoted()
        if self.startswith("B'"):
            self.position += 1
            return self.quoted()
        end = self.text.find(" ", self.position)
        end = len(self.text) if end < 0 else end
        word = self.text[self.position : end]
        if not word:
            raise _Unparsable(f"expected a value at {self.position}")
        self.position = end
        if word == "null":
            return None
        if word == _Toast.UNCHANGED.value:
            return _Toast.UNCHANGED
        return word


_BARE_IDENTIFIER = re.compile(r'[^\s".,:\[\]]+')
_QUOTED = re.compile(r"'([^']*(?:''[^']*)*)'")


def _columns(scanner: _Scanner, stop: str | None = None) -> dict[str, Datum] | None:
    """The columns of one tuple (' name[type]:value' each) up to the end of the line or ``stop``;
    None for '(no-tuple-data)'."""
    if scanner.startswith(" (no-tuple-data)"):
        scanner.position += len(" (no-tuple-data)")
        return None
    columns: dict[str, Datum] = {}
    while not scanner.at_end() and not (stop is not None and scanner.startswith(stop)):
        scanner.expect(" ")
        name = scanner.identifier()
        scanner.expect("[")
        scanner.type_name()
        scanner.expect("]:")
        columns[name] = scanner.datum()
    return columns


def _relations(scanner: _Scanner) -> list[tuple[str, str]]:
    """'schema.name[, schema.name...]:' after 'table ' (several only for a TRUNCATE)."""
    relations = []
    while True:
        schema = scanner.identifier()
        scanner.expect(".")
        relations.append((schema, scanner.identifier()))
        if scanner.startswith(":"):
            scanner.position += 1
            return relations
        scanner.expect(", ")


def _key(datum: Datum, kind: KeyKind) -> FeedKey:
    if not isinstance(datum, str):
        raise _Unparsable("not a key value")
    if kind == "int":
        return int(datum)
    if kind == "decimal":
        try:
            return Decimal(datum)
        except InvalidOperation:
            raise _Unparsable(f"{datum!r} is not a number") from None
    return datum


def _row_change(scanner: _Scanner, action: str, target: FeedTarget) -> tuple[KeyChange, ...]:
    """The keys one INSERT, UPDATE or DELETE of the target changed. Old tuples skip nulls, so a key
    missing from one is unknown (raises, so the caller rescans); a null key in a new tuple is a row
    the migration skips anyway."""
    old: dict[str, Datum] | None = None
    if action == "INSERT":
        new = _columns(scanner)
    elif action == "UPDATE":
        if scanner.startswith(" old-key:"):
            scanner.position += len(" old-key:")
            old = _columns(scanner, stop=" new-tuple:")
            scanner.expect(" new-tuple:")
            if old is None or target.key not in old:
                raise _Unparsable("the old key does not name the key column")
        new = _columns(scanner)
    elif action == "DELETE":
        old = _columns(scanner)
        if old is None or target.key not in old:
            raise _Unparsable("the deleted row's key is not in the line")
        return (KeyChange(_key(old[target.key], target.kind), deleted=True),)
    else:
        raise _Unparsable(f"unknown action {action}")
    if not scanner.at_end() or new is None or target.key not in new:
        raise _Unparsable("the new row's key is not in the line")
    changes: list[KeyChange] = []
    old_key = None if old is None else _key(old[target.key], target.kind)
    new_datum = new[target.key]
    if new_datum is _Toast.UNCHANGED:
        if old_key is None:
            raise _Unparsable("the key is an unchanged out-of-line value")
        new_key: FeedKey | None = old_key
    else:
        new_key = None if new_datum is None else _key(new_datum, target.kind)
    if old_key is not None and old_key != new_key:
        changes.append(KeyChange(old_key, deleted=True))
    if new_key is not None:
        changes.append(KeyChange(new_key, deleted=False))
    return tuple(changes)


_ACTIONS = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")


def decode_line(line: str, target: FeedTarget) -> DecodedLine:
    """One line of ``test_decoding`` output (as its ``data`` column holds it) for ``target``.

    A change of another table is recognised from its header alone (its columns are never parsed,
    however large). A line of the target that cannot be parsed asks for a rescan rather than
    failing: failing would stop the feed at that line for good, while a rescan is always correct.
    """
    if line == "BEGIN" or line.startswith("BEGIN "):
        return DecodedLine(LineKind.BEGIN)
    if line == "COMMIT" or line.startswith("COMMIT "):
        return DecodedLine(LineKind.COMMIT)
    if not line.startswith("table "):
        return DecodedLine(LineKind.OTHER)
    scanner = _Scanner(line, len("table "))
    try:
        relations = _relations(scanner)
    except _Unparsable:
        # Which table it is cannot be told: it may be the target.
        return DecodedLine(LineKind.CHANGE, rescan=True)
    if not target.relations.intersection(relations):
        return DecodedLine(LineKind.CHANGE)
    action = next((action for action in _ACTIONS if scanner.startswith(f" {action}:")), None)
    if action is None:
        return DecodedLine(LineKind.CHANGE, rescan=True)
    scanner.position += len(action) + 2
    if action == "TRUNCATE":
        return DecodedLine(LineKind.CHANGE, rescan=True)
    try:
        return DecodedLine(LineKind.CHANGE, changes=_row_change(scanner, action, target))
    except ValueError:  # _Unparsable, or a key that is not of its type
        return DecodedLine(LineKind.CHANGE, rescan=True)


@dataclass(frozen=True)
class ChangeFeed:
    """The changes of one table in the transactions read.

    ``changes`` holds one entry per key, the key's last change, in the order of those last changes
    (commit order). ``upto_lsn`` is what to :func:`confirm` once they are applied: the end of the
    last whole transaction read, None when none was. ``truncated``: the table was truncated, or a
    change's key could not be read: the whole table has to be checked (its ``changes`` still
    count). ``transactions`` counts every transaction read, other tables' included."""

    changes: tuple[KeyChange, ...]
    upto_lsn: str | None
    truncated: bool
    transactions: int


def fold_feed(rows: Iterable[tuple[str, str]], target: FeedTarget) -> ChangeFeed:
    """The feed from ``(lsn, data)`` rows in decoding order. Only whole transactions count: lines
    after the last COMMIT (there should be none) are left to the next read."""
    committed: dict[FeedKey, KeyChange] = {}
    pending: list[KeyChange] = []
    pending_rescan = truncated = False
    upto_lsn: str | None = None
    transactions = 0
    for lsn, data in rows:
        line = decode_line(data, target)
        if line.kind is LineKind.BEGIN:
            pending, pending_rescan = [], False
        elif line.kind is LineKind.CHANGE:
            pending.extend(line.changes)
            pending_rescan = pending_rescan or line.rescan
        elif line.kind is LineKind.COMMIT:
            for change in pending:
                committed.pop(change.key, None)
                committed[change.key] = change
            truncated = truncated or pending_rescan
            pending, pending_rescan = [], False
            upto_lsn, transactions = lsn, transactions + 1
    return ChangeFeed(tuple(committed.values()), upto_lsn, truncated, transactions)


# -- the server ----------------------------------------------------------------------------------


def _postgres_engine(url: str, timeouts: Timeouts | None) -> sa.Engine:
    engine = open_engine(url, timeouts or Timeouts())
    if engine.dialect.name != "postgresql":
        engine.dispose()
        raise LogicalDecodingUnavailable(
            f"a change feed by logical decoding needs a PostgreSQL source, and this source is"
            f" {engine.dialect.name}: use a PostgreSQL source or another change-capture mode"
        )
    return engine


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    # psycopg (3) names it sqlstate, psycopg2 pgcode.
    code: object = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return code if isinstance(code, str) else None


def _decoding_error(error: sa_exc.DBAPIError, what: str, slot: str, url: str) -> Exception:
    """A database error of a slot function, with what to do about it where the cause is known."""
    code, message = _sqlstate(error), first_line(error)
    if code == "42501":
        user = sa.make_url(url).username or "the source user"
        return LogicalDecodingUnavailable(
            f"{what}: the source user may not use replication slots ({message}): give it the"
            f" REPLICATION attribute (ALTER ROLE {user} REPLICATION)"
        )
    if code == "53400":
        return LogicalDecodingUnavailable(
            f"{what}: every replication slot of the source server is in use: drop the unused ones (the"
            " view pg_replication_slots lists them) or raise max_replication_slots in postgresql.conf"
            " and restart the server"
        )
    if code == "55006":
        return SourceUnavailable(f"{what}: replication slot {slot} is in use by another connection")
    if code == "42704" and "replication slot" in message:
        return _slot_missing(what, slot)
    if code == "58P01":
        return LogicalDecodingUnavailable(
            f"{what}: the source server lacks the {PLUGIN} output plugin ({message}): install"
            " PostgreSQL's contrib modules on it (Debian: part of the postgresql package)"
        )
    if code == "55000" and "wal_level" in message:
        return LogicalDecodingUnavailable(
            f"{what}: logical decoding needs wal_level = logical: {WAL_LEVEL_FIX}"
        )
    return source_error(error, what)


def _slot_missing(what: str, slot: str) -> SlotMissing:
    return SlotMissing(
        f"{what}: replication slot {slot} does not exist: create it again and sync the whole table"
        " (the changes since it went are lost)"
    )


@dataclass(frozen=True)
class _Slot:
    plugin: str | None
    database: str | None
    confirmed_flush_lsn: str | None
    current_database: str


def _slot(connection: sa.Connection, slot: str) -> _Slot | None:
    row = connection.execute(
        sa.text(
            "SELECT plugin, database, confirmed_flush_lsn::text, current_database()"
            " FROM pg_replication_slots WHERE slot_name = :slot"
        ),
        {"slot": slot},
    ).one_or_none()
    if row is None:
        return None
    plugin, database, confirmed, current = row
    return _Slot(
        plugin=None if plugin is None else str(plugin),
        database=None if database is None else str(database),
        confirmed_flush_lsn=None if confirmed is None else str(confirmed),
        current_database=str(current),
    )


def _require_ours(slot: str, found: _Slot) -> None:
    if found.plugin != PLUGIN or found.database != found.current_database:
        kind = "a physical slot" if found.plugin is None else f"a slot of plugin {found.plugin}"
        raise SourceMisconfigured(
            f"replication slot {slot} is {kind} in database {found.database}, not a {PLUGIN} slot of"
            f" database {found.current_database}: it is not this plan's; drop it or rename the plan"
        )


def create_slot(url: str, slot: str, timeouts: Timeouts | None = None) -> None:
    """Creates the logical slot ``slot`` (plugin test_decoding) in the URL's database; a slot of
    that name already there is kept, with its position. Changes are followed from the moment the
    slot exists: creating it waits for the transactions running at that moment to end (within the
    statement timeout)."""
    _check_slot(slot)
    engine = _postgres_engine(url, timeouts)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            wal_level, slots = connection.execute(
                sa.text("SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int")
            ).one()
            if problem := settings_problem(str(wal_level), int(slots)):
                raise LogicalDecodingUnavailable(problem)
            if (found := _slot(connection, slot)) is not None:
                _require_ours(slot, found)
                return
            try:
                connection.execute(
                    sa.text("SELECT pg_create_logical_replication_slot(:slot, :plugin)"),
                    {"slot": slot, "plugin": PLUGIN},
                )
            except sa_exc.DBAPIError as error:
                if _sqlstate(error) != "42710":  # duplicate_object: created meanwhile by another caller
                    raise
                if (found := _slot(connection, slot)) is not None:
                    _require_ours(slot, found)
    except sa_exc.DBAPIError as error:
        raise _decoding_error(error, f"creating replication slot {slot}", slot, url) from None
    finally:
        engine.dispose()


def drop_slot(url: str, slot: str, timeouts: Timeouts | None = None) -> bool:
    """Drops the slot, so the server stops keeping WAL for it; False when there was none. A slot
    in use by another connection (a worker peeking right now) raises SourceUnavailable: retry."""
    _check_slot(slot)
    engine = _postgres_engine(url, timeouts)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if _slot(connection, slot) is None:
                return False
            try:
                connection.execute(sa.text("SELECT pg_drop_replication_slot(:slot)"), {"slot": slot})
            except sa_exc.DBAPIError as error:
                if _sqlstate(error) == "42704":  # dropped meanwhile by another caller
                    return False
                raise
            return True
    except sa_exc.DBAPIError as error:
        raise _decoding_error(error, f"dropping replication slot {slot}", slot, url) from None
    finally:
        engine.dispose()


_TARGET_ROOT = sa.text(
    "SELECT c.oid, c.relkind, n.nspname, c.relname FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(:name)"
)
_TARGET_RELATIONS = sa.text(
    """
    WITH leaves AS (
        SELECT tree.relid AS oid FROM pg_partition_tree(CAST(:root AS oid)) AS tree
        WHERE tree.isleaf AND :relkind = 'p'
        UNION ALL SELECT CAST(:root AS oid) WHERE :relkind <> 'p'
    )
    SELECT n.nspname, c.relname, a.attname IS NOT NULL,
           format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, NULL),
           c.relreplident = 'f' OR EXISTS (
               SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND a.attnum = ANY(i.indkey)
               AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))
           ),
           'table ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ':'
    FROM leaves JOIN pg_class c ON c.oid = leaves.oid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a
        ON a.attrelid = c.oid AND a.attname = :key AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_type t ON t.oid = a.atttypid
    """
)


def _target(connection: sa.Connection, table: TableRef, key: str) -> tuple[FeedTarget, list[str]]:
    """The target as the catalog describes it now, and the line prefixes of its relations (for the
    server to send only the lines that can matter). Refuses a key that deletes would not name: the
    decoding prints only the replica identity of a deleted row (by default its primary key)."""
    name = f"{_quote(table.schema)}.{_quote(table.name)}" if table.schema else _quote(table.name)
    root = connection.execute(_TARGET_ROOT, {"name": name}).one_or_none()
    if root is None:
        raise SourceMisconfigured(f"table {table} does not exist (or the source user cannot see it)")
    oid, relkind, schema, relname = int(root[0]), str(root[1]), str(root[2]), str(root[3])
    if relkind not in ("r", "p"):
        raise LogicalDecodingUnavailable(
            f"{table} is not a table (relkind {relkind}): logical decoding sees the changes of tables only"
        )
    rows = connection.execute(_TARGET_RELATIONS, {"root": oid, "relkind": relkind, "key": key}).all()
    if not rows:
        raise LogicalDecodingUnavailable(f"partitioned table {table} has no partitions to follow")
    relations: set[tuple[str, str]] = set()
    prefixes: list[str] = []
    kinds: set[str] = set()
    for leaf_schema, leaf_name, has_key, type_name, identity_has_key, prefix in rows:
        if not has_key:
            raise SourceMisconfigured(f"table {schema}.{relname} has no column {key}")
        if not identity_has_key:
            raise LogicalDecodingUnavailable(
                f"primaryKey {key} is not in the replica identity of {leaf_schema}.{leaf_name}, so"
                f" deletes and key changes would not say which {key} they removed: make {key} the"
                f" table's primary key, or ALTER TABLE {_quote(str(leaf_schema))}.{_quote(str(leaf_name))}"
                " REPLICA IDENTITY FULL"
            )
        relations.add((str(leaf_schema), str(leaf_name)))
        prefixes.append(str(prefix))
        kinds.add(str(type_name))
    type_name = kinds.pop() if len(kinds) == 1 else "mixed types"
    kind = key_kind(type_name)
    if kind is None:
        raise SourceMisconfigured(
            f"primaryKey {key} of {table} is of type {type_name}: a change feed needs an integer,"
            " numeric, text or UUID key: choose another primaryKey"
        )
    return FeedTarget(frozenset(relations), key, kind), prefixes


def _quote(identifier: str) -> str:
    """An identifier quoted for to_regclass, always (a name the spec gives is taken as it is
    spelled, like the other SQL sources take it)."""
    return '"' + identifier.replace('"', '""') + '"'


_PEEK = sa.text(
    """
    SELECT lsn::text, data
    FROM pg_logical_slot_peek_changes(:slot, NULL, :limit, 'include-xids', '0', 'skip-empty-xacts', '1')
    WHERE data = 'BEGIN' OR starts_with(data, 'COMMIT')
       OR (starts_with(data, 'table ')
           AND (data ^@ ANY(CAST(:prefixes AS text[])) OR strpos(data, ': TRUNCATE:') > 0))
    """
)
"""The slot's lines that can matter to one table: transaction boundaries, the table's own changes
(by their exact 'table <schema>.<name>:' prefix, quoted by quote_ident as test_decoding quotes it)
and TRUNCATEs (which may list it after another table). Other tables' rows, however large, stay on
the server; :func:`decode_line` still checks every line it gets."""


def peek_changes(
    url: str,
    slot: str,
    table: str,
    primary_key: str,
    max_changes: int = 10000,
    timeouts: Timeouts | None = None,
) -> ChangeFeed:
    """The keys of ``table`` changed since the slot's confirmed position, without moving it.

    ``max_changes`` bounds the decoded lines read (every table's, BEGIN and COMMIT included); the
    server stops at a transaction's end, so a transaction larger than that is still read whole.
    ``table`` may name a schema; without one it is looked up in the search path (normally
    public). Only the lines of the table (or its partitions) and transaction boundaries leave the
    server."""
    _check_slot(slot)
    if max_changes < 1:
        raise ValueError("max_changes must be at least 1")
    ref = TableRef.parse(table)
    engine = _postgres_engine(url, timeouts)
    try:
        with engine.connect() as connection:
            target, prefixes = _target(connection, ref, primary_key)
            rows = connection.execution_options(yield_per=PEEK_PAGE).execute(
                _PEEK, {"slot": slot, "limit": max_changes, "prefixes": prefixes}
            )
            return fold_feed(((str(lsn), str(data)) for lsn, data in rows), target)
    except sa_exc.DBAPIError as error:
        raise _decoding_error(error, f"reading the changes of {ref} from slot {slot}", slot, url) from None
    finally:
        engine.dispose()


def confirm(url: str, slot: str, upto_lsn: str, timeouts: Timeouts | None = None) -> None:
    """Advances the slot to ``upto_lsn`` (a feed's ``upto_lsn``): the transactions up to there are
    applied and never read again, and the server may recycle their WAL. Confirming a position the
    slot has already passed does nothing: a worker that confirms twice, or late, is not an error."""
    _check_slot(slot)
    lsn_value(upto_lsn)
    engine = _postgres_engine(url, timeouts)
    what = f"confirming slot {slot} up to {upto_lsn}"
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            found = _slot(connection, slot)
            if found is None:
                raise _slot_missing(what, slot)
            _require_ours(slot, found)
            if found.confirmed_flush_lsn and lsn_value(found.confirmed_flush_lsn) >= lsn_value(upto_lsn):
                return
            try:
                connection.execute(
                    sa.text("SELECT pg_replication_slot_advance(:slot, CAST(:lsn AS pg_lsn))"),
                    {"slot": slot, "lsn": upto_lsn},
                )
            except sa_exc.DBAPIError as error:
                # Another worker advanced it further meanwhile: "cannot advance ... minimum is ...".
                if _sqlstate(error) == "55000" and "cannot advance" in first_line(error):
                    return
                raise
    except sa_exc.DBAPIError as error:
        raise _decoding_error(error, what, slot, url) from None
    finally:
        engine.dispose()
