"""Each function's package imports on its own, as in the Lambda runtime (boto3 provided, nothing else)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stacks.lambda_package import ZIP_DATE, package, stage

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import importlib
module = importlib.import_module(sys.argv[2])
assert module.__file__.startswith(sys.argv[1]), module.__file__
assert callable(module.handler)
"""


@pytest.mark.parametrize("function", ["processor", "folder"])
def test_staged_package_imports_without_the_project(function: str, tmp_path: Path) -> None:
    staged = stage(function)
    names = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*.py"))
    assert f"lambdas/{function}/handler.py" in names
    assert not [
        n for n in names if n.startswith("lambdas/") and n.split("/")[1] not in (function, "common", "__init__.py")
    ]
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", PROBE, str(staged), f"lambdas.{function}.handler"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("function", ["processor", "folder"])
def test_package_is_reproducible_and_matches_the_staged_code(function: str) -> None:
    first = package(function)
    built = first.path.read_bytes()
    first.path.unlink()
    again = package(function)
    assert again.path == first.path
    assert again.path.read_bytes() == built, "the same code must give the same zip bytes"
    assert again.base64_sha256 == base64.b64encode(hashlib.sha256(built).digest()).decode()
    staged = stage(function)
    with zipfile.ZipFile(again.path) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        assert {i.date_time for i in infos} == {ZIP_DATE}
        assert {i.external_attr >> 16 for i in infos} == {0o100644}
        assert {i.filename: archive.read(i) for i in infos} == {
            p.relative_to(staged).as_posix(): p.read_bytes() for p in staged.rglob("*.py")
        }
