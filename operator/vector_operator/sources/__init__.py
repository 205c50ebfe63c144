"""Where records come from: an SQL table (``sql``) or files (``files``), both read as a stream of
pages of :class:`~vector_operator.worker.records.SourceRow`, so memory stays flat whatever the
key range."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from vector_operator.worker.records import SourceRow


class SourceMisconfigured(Exception):
    """The source cannot work as described (missing table, column, file); the message says what
    to fix. Retrying does not help."""


class SourceUnavailable(Exception):
    """The source cannot be reached right now (connection refused, timeout). Retrying may help."""


class RecordSource(Protocol):
    def pages(self) -> Iterator[list[SourceRow]]:
        """The rows of the key range, in key order (SQL) or file order (files), page by page."""
        ...

    def close(self) -> None: ...
