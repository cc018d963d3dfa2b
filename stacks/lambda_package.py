"""Stages a Lambda function's code for packaging, independent of the working directory.

The zip that Lambda runs holds the ``lambdas`` package with the function's own folder and the shared
``lambdas/common`` folder, so the handler is ``lambdas.<fn>.handler.handler`` both in AWS and in the
tests. Only ``*.py`` files are staged (no ``__pycache__``, no tests), into a content-addressed folder
under ``.build/``: the same code always gives the same asset hash, whatever folder synth runs from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = PROJECT_ROOT / "lambdas"
BUILD_DIR = PROJECT_ROOT / ".build" / "lambda"
SHARED_PACKAGE = "common"


def _sources(function: str) -> list[tuple[str, Path]]:
    """(path inside the zip, source file) pairs, sorted."""
    files: list[tuple[str, Path]] = [("lambdas/__init__.py", LAMBDAS_DIR / "__init__.py")]
    for folder in (function, SHARED_PACKAGE):
        root = LAMBDAS_DIR / folder
        if not root.is_dir():
            raise FileNotFoundError(f"Lambda source folder {root} does not exist")
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts or "tests" in path.relative_to(root).parts:
                continue
            files.append((f"lambdas/{folder}/{path.relative_to(root).as_posix()}", path))
    return sorted(files)


def stage(function: str) -> Path:
    """Copy the function's code into a content-addressed folder and return that folder."""
    files = _sources(function)
    digest = hashlib.sha256()
    for arcname, path in files:
        digest.update(arcname.encode() + b"\0" + path.read_bytes() + b"\0")
    target = BUILD_DIR / f"{function}-{digest.hexdigest()[:16]}"
    if target.is_dir():
        # Anything run from the staged folder may have left bytecode behind: never package it.
        for cache in target.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        return target
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{function}-", dir=BUILD_DIR))
    for arcname, path in files:
        dest = scratch / arcname
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    try:
        os.rename(scratch, target)
    except OSError:  # another process staged the same content first
        shutil.rmtree(scratch, ignore_errors=True)
    return target
