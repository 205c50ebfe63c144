"""Where records come from: an SQL table or files. One SQL module serves both sides: the
MigrationPlan controller's key scan (:mod:`.sql_keys`, which plans the batches) and the worker's
pages (:mod:`.sql_pages`), over one way of connecting (:mod:`.sql_engine`), so that a batch's
bounds are compared by the database exactly as they were found. Records are read as a stream of
pages of :class:`~vector_operator.sources.records.SourceRow`, so memory stays flat whatever the
key range."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from vector_operator.sources.records import SourceRow


class SourceMisconfigured(Exception):
    """The source cannot work as described (missing table, column, file, a key that is not unique);
    the message says what to fix. Retrying does not help."""


class SourceUnavailable(Exception):
    """The source cannot be reached right now (connection refused, timeout). Retrying may help."""


class RecordSource(Protocol):
    def pages(self) -> Iterator[list[SourceRow]]:
        """The rows of the key range, in key order (SQL) or file order (files), page by page."""
        ...

    def close(self) -> None: ...
