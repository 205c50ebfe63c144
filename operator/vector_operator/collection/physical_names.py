"""Physical collection names behind an alias: `<alias>__v<N>`.

Applications query the alias; the operator creates versioned physical collections behind it, so a
MigrationPlan can fill `__v<N+1>` while `__v<N>` serves, and swing the alias atomically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SEPARATOR = "__v"


def physical_name(alias: str, version: int) -> str:
    if version < 1:
        raise ValueError(f"physical collection versions start at 1, not {version}")
    return f"{alias}{SEPARATOR}{version}"


def version_of(alias: str, name: str) -> int | None:
    """The N of `<alias>__v<N>`, or None when `name` is not one of the alias's physical collections."""
    match = re.fullmatch(re.escape(alias + SEPARATOR) + r"([1-9][0-9]{0,8})", name)
    return int(match.group(1)) if match else None


def physical_collections(alias: str, names: Iterable[str]) -> list[str]:
    """The alias's physical collections among `names`, oldest version first."""
    versions = sorted((v, n) for n in names if (v := version_of(alias, n)) is not None)
    return [name for _, name in versions]


def next_physical_name(alias: str, names: Iterable[str]) -> str:
    """The name of the next physical collection: one version above the highest that exists."""
    existing = [version_of(alias, name) or 0 for name in physical_collections(alias, names)]
    return physical_name(alias, max(existing, default=0) + 1)


SCRATCH_SUFFIXES = ("__tune_a", "__tune_b")


def scratch_names(alias: str) -> list[str]:
    """The scratch collections a tuning study of the alias's collection builds candidates on."""
    return [alias + suffix for suffix in SCRATCH_SUFFIXES]
