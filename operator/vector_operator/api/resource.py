"""What a kind of resource is called and how ``kubectl get`` shows it: the parts of a
CustomResourceDefinition that are not the schema. Each kind's module declares one
:class:`ResourceKind`; :mod:`vector_operator.api.crd` renders them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel

GROUP: Final = "vectors.aios.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "vectors.aios.dev/v1alpha1"
CATEGORY = "vectors"


@dataclass(frozen=True)
class PrinterColumn:
    """A column of ``kubectl get``; ``priority`` 1 shows it only with ``-o wide``."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    description: str
    priority: int = 0


@dataclass(frozen=True)
class ResourceKind:
    """A namespaced kind of this API group: its names, schema models and printer columns."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: tuple[PrinterColumn, ...]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date", "Time since the object was created.")
