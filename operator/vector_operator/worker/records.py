"""A record on its way through the worker: prepared for the model, with its text and fields."""

from __future__ import annotations

from dataclasses import dataclass

from vector_operator.sources.records import Key


@dataclass(slots=True)
class PreparedRecord:
    """A record ready to embed: its key, the text, the scalar fields as Milvus takes them, and
    the text's length in model tokens (special tokens included, before truncation)."""

    key: Key
    text: str
    fields: dict[str, object]
    token_count: int = 0
    content_hash: int | None = None
    """The hash of ``text`` under the model (contract.content_hash), written beside the vector
    when the collection keeps one."""
