"""Copies an installed distribution's files, as its RECORD lists them, under a staging directory at
their absolute paths (a step of the Dockerfile's builder stage).

The runtime stage copies the virtual environment in two layers: the dependencies (several GB,
rebuilt only when the dependency list changes) and then this staging directory (the
vector-operator package, its scripts and its compiled bytecode: a few MB). Copying the whole venv
once more after installing the package would write all of it into a new layer on every source
change.

Usage: python stage_package.py DISTRIBUTION STAGING_DIR [EXTRA_DIR...]   (run by the venv's python;
EXTRA_DIR, absolute, is copied whole, e.g. the exported ONNX graphs)
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from pathlib import Path


def staged(source: str, root: Path) -> Path:
    return root / os.path.normpath(source).lstrip("/")


def main(argv: list[str]) -> int:
    name, root, extra = argv[1], Path(argv[2]), argv[3:]
    distribution = importlib.metadata.distribution(name)
    copied = 0
    for file in distribution.files or []:
        source = os.path.normpath(str(distribution.locate_file(file)))
        if not os.path.isfile(source):
            continue
        target = staged(source, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
        copied += 1
    for directory in extra:
        shutil.copytree(directory, staged(directory, root), symlinks=True, dirs_exist_ok=True)
    print(f"staged {copied} files of {name} and {len(extra)} directories under {root}")
    return 0 if copied else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
