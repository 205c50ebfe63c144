"""Writes the image's requirement files from pyproject.toml (a step of the Dockerfile).

``requirements.txt``: the build system's requirements (the package is then installed with
``--no-build-isolation``, offline) and the project's dependencies, no extras. ``torch.txt``: the
torch requirement alone, for a build that installs torch from another index first
(``TORCH_INDEX_URL``). Only the dependency list reaches these files, so the Dockerfile's layer that
installs them is reused whatever else changes in pyproject.toml.

Usage: python3 requirements.py PYPROJECT OUTPUT_DIR   (standard library only: it runs on the base's
python3, before any virtual environment exists)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any


def requirements(pyproject: dict[str, Any]) -> list[str]:
    build_system: dict[str, list[str]] = pyproject.get("build-system", {})
    project: dict[str, Any] = pyproject.get("project", {})
    return [*build_system.get("requires", []), *project.get("dependencies", [])]


def is_torch(requirement: str) -> bool:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match is not None and match.group(1).lower() == "torch"


def main(argv: list[str]) -> int:
    pyproject_path, output = Path(argv[1]), Path(argv[2])
    with pyproject_path.open("rb") as file:
        listed = requirements(tomllib.load(file))
    torch = [requirement for requirement in listed if is_torch(requirement)]
    if len(torch) != 1:
        print(f"{pyproject_path}: expected one torch requirement, found {torch}", file=sys.stderr)
        return 1
    output.mkdir(parents=True, exist_ok=True)
    (output / "requirements.txt").write_text("\n".join(listed) + "\n")
    (output / "torch.txt").write_text(torch[0] + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
