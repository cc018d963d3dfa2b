"""Each function's package imports on its own, as in the Lambda runtime (boto3 provided, nothing else)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stacks.lambda_package import stage

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import importlib
module = importlib.import_module(sys.argv[2])
assert module.__file__.startswith(sys.argv[1]), module.__file__
assert callable(module.handler)
"""


@pytest.mark.parametrize("function", ["processor", "alert"])
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
