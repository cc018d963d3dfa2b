"""Packages a Lambda function's code, independent of the working directory.

The zip that Lambda runs holds the ``lambdas`` package with the function's own folder and the shared
``lambdas/common`` folder, so the handler is ``lambdas.<fn>.handler.handler`` both in AWS and in the
tests. Only ``*.py`` files are taken (no ``__pycache__``, no tests). :func:`stage` copies them into a
content-addressed folder under ``.build/`` (what the import test runs); :func:`package` writes the zip
itself, reproducibly (sorted entries, fixed timestamps and modes), next to it: the same code always
gives the same bytes and the same ``source_code_hash``, whatever folder or machine synth runs on, and
synthesis copies a finished file instead of spawning an archiver per function and environment.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = PROJECT_ROOT / "lambdas"
BUILD_DIR = PROJECT_ROOT / ".build" / "lambda"
SHARED_PACKAGE = "common"
# Zip entries carry no real timestamps or owners: the archive depends on the code only.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644


@dataclass(frozen=True)
class LambdaPackage:
    """A function's deployment zip and the ``source_code_hash`` Lambda compares (base64 SHA-256)."""

    path: Path
    base64_sha256: str


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


def _content_id(function: str, files: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for arcname, path in files:
        digest.update(arcname.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{function}-{digest.hexdigest()[:16]}"


def package(function: str) -> LambdaPackage:
    """Build (or reuse) the function's reproducible deployment zip."""
    files = _sources(function)
    target = BUILD_DIR / f"{_content_id(function, files)}.zip"
    if not target.is_file():
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(prefix=f".{function}-", suffix=".zip", dir=BUILD_DIR)
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for arcname, path in files:
                info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
                info.external_attr = ZIP_FILE_MODE << 16
                info.create_system = 3  # unix, whatever builds it
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compresslevel=9)
        os.replace(scratch, target)  # same content, same bytes: a concurrent writer is harmless
    sha256 = hashlib.sha256(target.read_bytes()).digest()
    return LambdaPackage(target, base64.b64encode(sha256).decode())


def stage(function: str) -> Path:
    """Copy the function's code into a content-addressed folder and return that folder."""
    files = _sources(function)
    target = BUILD_DIR / _content_id(function, files)
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
