"""Whether the scalar fields a sync would write equal those the collection holds, so that a row
whose text and fields are unchanged is not written at all.

Pure. Values are compared as Milvus gives them back: a FLOAT at float32 precision (it stores
float32, so 0.1 comes back as 0.10000000149...), a JSON value by value (a number as a number,
whether it comes back as 1 or 1.0, but never equal to a boolean or a string), anything else as is.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vector_operator.api.vectorcollection import ScalarField
from vector_operator.api.vectorcollection import ScalarFieldType as ScalarType


def _same_json(new: object, stored: object) -> bool:
    if isinstance(new, bool) or isinstance(stored, bool):
        return isinstance(new, bool) and isinstance(stored, bool) and new == stored
    if isinstance(new, int | float) and isinstance(stored, int | float):
        return new == stored
    if isinstance(new, Mapping) and isinstance(stored, Mapping):
        return new.keys() == stored.keys() and all(_same_json(new[key], stored[key]) for key in new)
    if isinstance(new, list | tuple) and isinstance(stored, list | tuple):
        return len(new) == len(stored) and all(_same_json(a, b) for a, b in zip(new, stored, strict=True))
    return type(new) is type(stored) and new == stored


def same_value(field_type: ScalarType, new: object, stored: object) -> bool:
    """Whether ``stored`` (as Milvus returned it) is what writing ``new`` would store."""
    if new is None or stored is None:
        return new is None and stored is None
    if field_type is ScalarType.FLOAT:
        if not isinstance(new, int | float) or not isinstance(stored, int | float):
            return False
        return bool(np.float32(new) == np.float32(stored))
    if field_type is ScalarType.JSON:
        return _same_json(new, stored)
    return bool(new == stored)


def same_fields(
    new: Mapping[str, object], stored: Mapping[str, object], fields: Mapping[str, ScalarField]
) -> bool:
    """Whether every field of ``new`` (name -> value, as FieldMapper made it) is stored as is;
    ``fields`` gives each name's type."""
    return all(same_value(fields[name].type, value, stored.get(name)) for name, value in new.items())
