"""The operator's objects as the plugin reads them: parsed into the API's own models, or one line
that says which object and field did not parse (a plugin of another version than the operator,
or a status edited by hand) instead of a traceback."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from vector_operator.plugin.cluster import PluginError

Model = TypeVar("Model", bound=BaseModel)


def parsed(model: type[Model], item: dict[str, Any], part: str) -> Model:
    """``item[part]`` (its spec or status) as ``model``; PluginError when it does not parse."""
    try:
        return model.model_validate(item.get(part) or {})
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(step) for step in (part, *first["loc"]))
        metadata = item.get("metadata") or {}
        what = f"{item.get('kind', 'object')} {metadata.get('namespace', '?')}/{metadata.get('name', '?')}"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise PluginError(
            f"{what}: {field}: {first['msg']}{more}; is this plugin the operator's version?"
        ) from None
