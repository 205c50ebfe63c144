"""Reading a worker's JSON document (an assignment) from a file or an environment variable, with
the version check and validation the workers share: every failure is one line that says what to
fix, raised as the caller's own error type."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def load_document(
    model: type[Model],
    path: Path | None,
    environ: Mapping[str, str],
    *,
    env: str,
    what: str,
    versions: Collection[int],
    refused: type[Exception],
) -> Model:
    """``model`` from the file ``path`` when given, else from the JSON in ``$env``; a document of a
    version not in ``versions`` is refused naming the image to run. Raises ``refused``."""
    if path is not None:
        try:
            document, origin = path.read_text(encoding="utf-8"), str(path)
        except OSError as error:
            raise refused(f"cannot read the {what} file {path}: {error.strerror}") from None
    elif environ.get(env):
        document, origin = environ[env], f"${env}"
    else:
        raise refused(f"no {what}: set ${env} (JSON) or pass --assignment FILE")
    try:
        raw = json.loads(document)
    except json.JSONDecodeError as error:
        raise refused(f"{origin} is not JSON: {error.msg} at line {error.lineno}") from None
    newest = max(versions)
    if isinstance(raw, dict) and raw.get("version", newest) not in versions:
        readable = " and ".join(str(version) for version in sorted(versions))
        plural = "s" if len(versions) > 1 else ""
        raise refused(
            f"{origin} is {what} version {raw.get('version')!r}, but this worker reads version{plural}"
            f" {readable}: run the worker image that matches the operator (--worker-image)"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or '(top)'}: {issue['msg']}"
            for issue in error.errors()
        )
        raise refused(f"{origin} is not a valid {what}: {problems}") from None
