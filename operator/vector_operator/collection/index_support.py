"""Which vector index types a Milvus server really builds.

A server may accept an index it cannot build: Milvus Lite 3.2 takes IVF_PQ when the build is
asynchronous, reports it Finished with every row indexed and serves searches by brute force,
while its log says the type is reserved for a future phase. The operator therefore asks each
server once (a synchronous build of every type on a tiny scratch collection: the build's own
error is returned then) and keeps the answer per server and version. This module holds the
answer and the words for what it refuses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class IndexSupport:
    """What one server (``server``: its version string) built, and why it refused the rest."""

    server: str
    built: frozenset[str]
    refused: Mapping[str, str] = field(default_factory=dict)  # index type -> the server's reason
    ignored: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Build parameters a type accepts but does not act on (Milvus Lite 3.2 makes its own IVF lists,
    whatever nlist says): a study does not search them."""

    def builds(self, index_type: str) -> bool:
        return index_type in self.built

    def alternatives(self) -> list[str]:
        return sorted(self.built)

    def refusal(self, index_type: str) -> str | None:
        """Why ``index_type`` cannot be used on this server, naming what can; None when it can."""
        if self.builds(index_type):
            return None
        reason = self.refused.get(index_type, "not built by the server")
        return (
            f"Milvus {self.server} does not build index type {index_type} ({reason}): choose one of"
            f" {', '.join(self.alternatives())}"
        )

    def ignores(self, index_type: str) -> tuple[str, ...]:
        return self.ignored.get(index_type, ())

    def usable(self, index_types: Iterable[str]) -> tuple[list[str], list[str]]:
        """``index_types`` split into those the server builds and those it does not, in order."""
        wanted = list(index_types)
        return [t for t in wanted if self.builds(t)], [t for t in wanted if not self.builds(t)]
